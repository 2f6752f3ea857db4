"""botsession: declarative, validated proxy routes for aiogram and aiohttp Telegram bots.

``import botsession`` and ``load_config`` never import aiogram (it takes seconds) nor aiohttp;
the aiogram session class is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config_schema import ApiServer, BotSessionConfig, ProxyHop, ProxyRoute, TlsSettings
from .errors import (
    AllRoutesFailedError,
    BotSessionError,
    BotSessionWarning,
    ConfigError,
    Problem,
    ProxyHopError,
    RouteError,
)
from .factory import build_client_session, build_session_from_config, load_config

if TYPE_CHECKING:
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
    "RouteError",
    "TlsSettings",
    "__version__",
    "build_client_session",
    "build_session_from_config",
    "load_config",
]


def __getattr__(name: str) -> Any:
    # Loaded lazily: AiohttpSession imports aiogram.
    if name == "AiohttpSession":
        from .session import AiohttpSession

        return AiohttpSession
    raise AttributeError(f"module 'botsession' has no attribute {name!r}")
