"""Where settings come from: ``BOT_…`` variables, ``.env``, ``bot.yaml`` (with positions and
profiles), the standard proxy variables, and keyword arguments — and how they stack, keeping
for every value where it was written (the style of pydantic-settings' ``sources/providers``).
"""

from .collect import KeywordSource, LoadedConfig, collect, default_api_base
from .problems import redacted_error
from .provenance import Origin, Stack
from .providers import (
    DotEnvSource,
    EnvironmentSource,
    LayeredSource,
    Reading,
    YamlFileSource,
    merge_sources,
    sources_to_read,
)

__all__ = [
    "DotEnvSource",
    "EnvironmentSource",
    "KeywordSource",
    "LayeredSource",
    "LoadedConfig",
    "Origin",
    "Reading",
    "Stack",
    "YamlFileSource",
    "collect",
    "default_api_base",
    "merge_sources",
    "redacted_error",
    "sources_to_read",
]
