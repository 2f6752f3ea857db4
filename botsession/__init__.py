"""botsession: declarative, validated proxy routes for aiogram and aiohttp Telegram bots.

``import botsession`` and ``load_config`` never import aiogram (it takes seconds), aiohttp,
python-telegram-bot, httpx, Telethon or kurigram; the adapters are loaded on first use. Each
adapter needs its framework, installed with botsession's extra of the same name (``pip install
'botsession[aiogram]'``, ``[ptb]``, ``[httpx]``, ``[telethon]``, ``[kurigram]``); without it,
using the adapter raises ``MissingExtraError`` (an ``ImportError``) naming the extra.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from .config_schema import ApiServer, BotSessionConfig, ProxyHop, ProxyRoute, TlsSettings
from .errors import (
    AllRoutesFailedError,
    BotSessionError,
    BotSessionWarning,
    ConfigError,
    MissingExtraError,
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
    from .kurigram import kurigram_connection as kurigram_connection
    from .net.routing import RouteStatus as RouteStatus
    from .ptb import BotSessionRequest as BotSessionRequest
    from .ptb import build_ptb_request as build_ptb_request
    from .ptb import configure_application as configure_application
    from .session import AiohttpSession as AiohttpSession
    from .telethon import telethon_connection as telethon_connection

__version__ = "0.1.0"

__all__ = [
    "AllRoutesFailedError",
    "ApiServer",
    "BotSessionConfig",
    "BotSessionError",
    "BotSessionWarning",
    "ConfigError",
    "MissingExtraError",
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


# Loaded on first use: the adapters each import their framework (aiogram takes seconds to
# import; each framework is an extra). RouteStatus needs no framework, but its module is the
# connecting machinery, which ``load_config`` never needs.
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
    "telethon_connection": "telethon",
    "kurigram_connection": "kurigram",
}
_FRAMEWORK_OF = {
    "session": "aiogram",
    "ptb": "telegram",
    "httpx_transport": "httpx",
    "telethon": "telethon",
    "kurigram": "pyrogram",
}
"""The framework each adapter module imports."""


def _loadable() -> list[str]:
    """The lazily loaded names whose adapter's framework is installed (looked for, not
    imported)."""
    missing = {
        module
        for module, framework in _FRAMEWORK_OF.items()
        if importlib.util.find_spec(framework) is None
    }
    return [name for name, module in _LAZY.items() if module not in missing]


# An adapter's names are exported (``from botsession import *``, ``help(botsession)``) where
# its framework is installed, so that both work in any installation.
__all__ += [name for name in _loadable() if name not in __all__]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'botsession' has no attribute {name!r}")
    try:
        adapter = importlib.import_module(f".{module}", __name__)
    except MissingExtraError as missing:
        raise missing.naming(name) from missing.__cause__
    return getattr(adapter, name)


def __dir__() -> list[str]:
    # The lazily loaded names too, where they can be loaded: help() looks up every name dir()
    # lists, and one whose framework is missing would end it with an ImportError.
    # Not the helpers this module imports (Any, importlib, …): only what botsession offers.
    dunders = (name for name in globals() if name.startswith("__"))
    return sorted({*__all__, *_loadable(), *dunders})
