"""botsession: declarative, validated proxy routes for aiogram and aiohttp Telegram bots.

``import botsession`` and ``load_config`` never import aiogram (it takes seconds), aiohttp,
python-telegram-bot or httpx; the adapters are loaded on first use.
"""

from __future__ import annotations

import importlib
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
    SessionClosedError,
)
from .factory import build_client_session, build_session_from_config, load_config
from .status import route_status

if TYPE_CHECKING:
    from .httpx_transport import RouteClient as RouteClient
    from .httpx_transport import RouteTransport as RouteTransport
    from .httpx_transport import build_httpx_client as build_httpx_client
    from .httpx_transport import build_httpx_transport as build_httpx_transport
    from .net.routing import RouteStatus as RouteStatus
    from .ptb import BotSessionRequest as BotSessionRequest
    from .ptb import build_ptb_request as build_ptb_request
    from .ptb import configure_application as configure_application
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
    "RouteStatus",
    "SessionClosedError",
    "TlsSettings",
    "__version__",
    "build_client_session",
    "build_session_from_config",
    "load_config",
    "route_status",
]


# Loaded on first use: the adapters each import their framework (aiogram takes seconds;
# python-telegram-bot and httpx are optional), so they stay out of __all__, and ``from
# botsession import *`` works without the optional frameworks installed. RouteStatus needs no
# framework, but its module is the connecting machinery, which ``load_config`` never needs.
_LAZY = {
    "AiohttpSession": "session",
    "RouteStatus": "net.routing",
    "RouteClient": "httpx_transport",
    "RouteTransport": "httpx_transport",
    "BotSessionRequest": "ptb",
    "build_httpx_client": "httpx_transport",
    "build_httpx_transport": "httpx_transport",
    "build_ptb_request": "ptb",
    "configure_application": "ptb",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'botsession' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
