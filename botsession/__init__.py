"""botsession: declarative, validated proxy routes for aiogram and aiohttp Telegram bots.

``import botsession`` and ``load_config`` never import aiogram (it takes seconds); the aiogram
session class is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config_schema import (
    ApiServer,
    BotSessionConfig,
    BotSessionWarning,
    ProxyHop,
    ProxyRoute,
    TlsSettings,
)
from .errors import BotSessionError, ConfigError, Problem
from .factory import build_client_session, build_session_from_config
from .loader import load_config

if TYPE_CHECKING:
    from .proxy_errors import AllRoutesFailedError, ProxyHopError
    from .session import AiohttpSession

__version__ = "0.1.0"

__all__ = [
    "AiohttpSession",
    "AllRoutesFailedError",
    "ApiServer",
    "BotSessionConfig",
    "BotSessionError",
    "BotSessionWarning",
    "ConfigError",
    "Problem",
    "ProxyHop",
    "ProxyHopError",
    "ProxyRoute",
    "TlsSettings",
    "__version__",
    "build_client_session",
    "build_session_from_config",
    "load_config",
]


def __getattr__(name: str) -> Any:
    # Loaded lazily: AiohttpSession imports aiogram, the proxy errors import aiohttp.
    if name == "AiohttpSession":
        from .session import AiohttpSession

        return AiohttpSession
    if name in ("ProxyHopError", "AllRoutesFailedError"):
        from . import proxy_errors

        return getattr(proxy_errors, name)
    raise AttributeError(f"module 'botsession' has no attribute {name!r}")
