"""``route_status(obj)``: the state of the routes behind anything botsession built, typed.

Each adapter has its own ``route_status()`` method, but the objects users hold are often typed
as the framework's base classes (``httpx.AsyncClient``, ``aiohttp.ClientSession.connector``,
PTB's ``app.bot.request``), which have no such method. This function takes any of them.

No framework is imported here: an object can only be an instance of a class whose module has
already been imported, so each class is looked up in ``sys.modules`` (``import botsession``
stays fast).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from .net.routing import RouteStatus

__all__ = ["route_status"]

_CONNECTIONS = (("botsession.mtproto", "RoutedConnection"),)
"""The base of the MTProto adapters' connection classes (Telethon's, kurigram's): the class
itself answers, and the clients hold the class."""
_HAS_STATUS = (
    ("botsession.session", "AiohttpSession"),
    ("botsession.ptb", "BotSessionRequest"),
    ("botsession.httpx_transport", "RouteTransport"),
    ("botsession.net.connector", "RouteConnector"),
    ("botsession.net.connector", "DirectConnector"),
    *_CONNECTIONS,
)
"""botsession's classes that answer ``route_status()`` themselves."""
_BUILT_BY = (
    "build_session_from_config, build_client_session, build_ptb_request, "
    "configure_application, build_httpx_client, build_httpx_transport, telethon_connection "
    "or kurigram_connection"
)


class _HasStatus(Protocol):
    def route_status(self) -> tuple[RouteStatus, ...]: ...


def route_status(built: object) -> list[RouteStatus]:
    """The state of each route behind ``built``, primary first; empty for a direct connection.

    ``built`` is anything botsession built, or a framework object holding it: the aiogram
    session (``build_session_from_config``) or an aiogram ``Bot`` using it; the
    ``aiohttp.ClientSession`` of ``build_client_session``; a ``BotSessionRequest``
    (``build_ptb_request``) or a PTB ``Bot`` / ``Application`` whose request it is
    (``configure_application``; the request that makes the API calls, not the ``getUpdates``
    one); the ``httpx.AsyncClient`` of ``build_httpx_client``, or one given the transport of
    ``build_httpx_transport``, or that transport; the connection class of
    ``telethon_connection`` or ``kurigram_connection``, one of its connections, or the
    ``TelegramClient`` / kurigram ``Client`` given it. Each
    ``RouteStatus`` tells the route's state (``active``, ``standby``, ``failed``), its last
    error (passwords masked), when the state changed and how long each hop took to answer.

    Raises ``TypeError``, naming what it got, for anything else (such as a session or client
    that botsession did not build, or an aiohttp session already closed).
    """
    found: list[str] = []
    source = _status_source(built, found)
    if source is None:
        raise TypeError(
            f"route_status() takes what botsession built ({_BUILT_BY}) or the Bot, "
            f"Application or client holding it; got {' '.join(found)}"
        )
    return list(source.route_status())


def _status_source(obj: object, found: list[str]) -> _HasStatus | None:
    """The botsession object behind ``obj``, noting in ``found`` what each step was."""
    found.append(_described(obj))
    if any(isinstance(obj, cls) for cls in _loaded(*_HAS_STATUS)):
        return cast("_HasStatus", obj)  # each of those classes has the method
    if isinstance(obj, type) and any(issubclass(obj, cls) for cls in _loaded(*_CONNECTIONS)):
        return cast("_HasStatus", obj)  # an MTProto connection class: a class method
    inner = _inner(obj)
    if inner is None:
        return None
    where, value = inner
    if value is None:
        closed = " (it is closed: ask before closing it)" if where == "connector" else ""
        found.append(f"whose {where} is None{closed}")
        return None
    found.append(f"whose {where} is")
    return _status_source(value, found)


def _inner(obj: object) -> tuple[str, Any] | None:
    """The attribute of a framework object that holds what botsession built, if it is one."""
    holders: tuple[tuple[tuple[str, str], str], ...] = (
        (("aiohttp", "ClientSession"), "connector"),
        (("telegram.ext", "Application"), "bot"),
        (("telegram", "Bot"), "request"),  # the request of API calls; not getUpdates'
        (("aiogram", "Bot"), "session"),
        # httpx keeps the transport it was given (or made) there, in every version we support.
        (("httpx", "AsyncClient"), "_transport"),
        # Telethon keeps the connection class it was given there (1.x).
        (("telethon", "TelegramClient"), "_connection"),
        # kurigram keeps its connection class there.
        (("pyrogram", "Client"), "connection_factory"),
    )
    for (module, name), attribute in holders:
        if any(isinstance(obj, cls) for cls in _loaded((module, name))):
            return attribute.lstrip("_"), getattr(obj, attribute, None)
    return None


def _loaded(*names: tuple[str, str]) -> list[type]:
    """The classes named (module, class) whose modules are imported already."""
    classes: list[type] = []
    for module, name in names:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type):
            classes.append(cls)
    return classes


def _described(obj: object) -> str:
    if isinstance(obj, type):  # a class given where botsession's would be (Telethon's)
        return f"class {obj.__module__}.{obj.__qualname__}"
    cls = type(obj)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
