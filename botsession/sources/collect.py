"""Collecting a configuration: read every source, stack them, validate once, report every
problem at once with where it was written.

Precedence, highest first: keyword overrides > environment > ``.env`` > YAML file > defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from ..errors import ConfigError, Problem
from .environment import override_layer
from .problems import MAX_PROBLEMS, problem_of, redacted_error, user_path
from .provenance import Layer, Origin, Path, Stack
from .providers import (
    DotEnvSource,
    EnvironmentSource,
    LayeredSource,
    ObjectSource,
    Reading,
    YamlFileSource,
    merge_sources,
    validating_given_data,
)

S = TypeVar("S", bound=BaseSettings)


@dataclass(frozen=True)
class LoadedConfig(Generic[S]):
    """A validated configuration plus where each of its values came from."""

    config: S
    stack: Stack

    def origin_of(self, path: Path) -> Origin:
        return self.stack.origin_of(path)


class KeywordSource(LayeredSource):
    """Keyword arguments (``load_config(limit=10)``): the highest precedence."""

    def __init__(self, settings_cls: type[BaseSettings], overrides: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self.overrides = dict(overrides)

    def layers(self) -> list[Layer]:
        return [override_layer(self.overrides)]


def collect(
    settings_cls: type[S],
    config: str | PathLike[str] | BaseSettings | None,
    reading: Reading,
    overrides: Mapping[str, Any],
) -> LoadedConfig[S] | ConfigError:
    """The validated configuration, or the error listing every problem (returned, not raised:
    raised here it would carry frames whose locals hold raw input, passwords included)."""
    sources: list[PydanticBaseSettingsSource] = [KeywordSource(settings_cls, overrides)]
    problems: list[Problem] = []
    if isinstance(config, BaseSettings):
        sources.append(ObjectSource(settings_cls, config))
        if reading.profile is not None:
            message = "a profile can only be chosen when reading a YAML file"
            problems.append(Problem("keyword argument profile=", "", message))
    else:
        reading.config = config
        sources += [
            EnvironmentSource(settings_cls, reading),
            DotEnvSource(settings_cls, reading),
            YamlFileSource(settings_cls, reading),
        ]
    stack, _ = merge_sources(sources, default_api_base(settings_cls))
    problems += stack.problems
    model: S | None = None
    try:
        with validating_given_data():
            model = settings_cls.model_validate(stack.data)
    except ValidationError as error:
        # A value that could not be read (an unset ${VAR}) has its problem already; what
        # validation says about the placeholder left in its place would only repeat it.
        details = [
            detail
            for detail in error.errors(include_url=False)
            if not stack.is_unread(user_path(tuple(detail["loc"]), stack.data))
        ]
        # Only the problems a ConfigError lists are worded (each may look for a close match of
        # a misspelt key); the others are counted.
        room = max(0, MAX_PROBLEMS - len(problems))
        problems += [problem_of(d, stack, settings_cls) for d in details[:room]]
        unworded = len(details) - min(room, len(details))
    else:
        unworded = 0
    if problems or model is None:
        return redacted_error(problems, stack.data, more=unworded)
    return LoadedConfig(model, stack)


def default_api_base(settings_cls: type[BaseSettings]) -> str:
    """The schema's Bot API base (``trust_env`` picks the proxy variable by its scheme)."""
    api = settings_cls.model_fields.get("api")
    default = api.get_default(call_default_factory=True) if api is not None else None
    base = getattr(default, "base", None)
    return base if isinstance(base, str) else "https://"
