"""Telethon over botsession routes: a ``connection=`` class whose streams go through the route.

``telethon_connection`` builds, from ``bot.yaml`` / ``BOT_…`` variables / keyword arguments, a
Telethon connection class that keeps Telethon's MTProto transport codec (TcpFull by default;
``codec="abridged"``, ``"intermediate"`` or ``"obfuscated"``) and opens each TCP stream to a
data center through the configured route — every hop kind, chains, fallback routes with
hedged connects and background checks (their target is the last DC dialled), ``limit``,
``connect_timeout``::

    from telethon import TelegramClient
    from botsession.telethon import telethon_connection

    client = TelegramClient("anon", api_id, api_hash, connection=telethon_connection("bot.yaml"))

The class holds one router, shared by every connection Telethon opens with it (the main DC and
the senders it borrows for other DCs); ``route_status()`` on the class tells each route's
state. MTProto is raw TCP: the route ends in a plain tunnel to the DC, no TLS to the target.

Connecting through the route takes at most ``connect_timeout`` (of the configuration) for each
route; hedging and fallback happen only while connecting, so nothing Telethon sent is ever sent
again by botsession (Telethon's own reconnects and resends are Telethon's). A route that fails
reaches Telethon as a ``ConnectionError`` that is also botsession's ``ProxyHopError`` or
``AllRoutesFailedError``, whose text names the hop: Telethon retries it like any connection
failure (``connection_retries``) and logs it ("Attempt 1 at connecting failed: ProxyHopError:
proxy hop 1 of 1 (socks5://…): …"), then raises its own "Connection to Telegram failed …".

Give the proxy to botsession, not to Telethon: ``TelegramClient(proxy=...)`` (and, with a
route, ``local_addr=``) together with this class raises ``ValueError`` when connecting. A
configuration without routes connects directly, as Telethon's own class of the codec does.

When no connection of the class is connected or connecting any more (``client.disconnect()``),
the router's background checks are stopped; they resume with the next connect. A tunnel whose
far end hung up before Telethon had it still ends Telethon's read (Telethon reads its first
answer without a timeout).

This is the only module that imports Telethon (``pip install 'botsession[telethon]'``).
"""

from __future__ import annotations

import asyncio
import weakref
from os import PathLike
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from .errors import ConfigError, MissingExtraError, Problem, RouteError, framework_error

try:
    from telethon.network.connection import (
        Connection,
        ConnectionTcpAbridged,
        ConnectionTcpFull,
        ConnectionTcpIntermediate,
        ConnectionTcpObfuscated,
    )
except ImportError as missing:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingExtraError(__name__, "Telethon", "telethon", missing.name) from missing

from .factory import ConfigInput, load_outcome
from .mtproto import close_when_idle, router_for
from .net.routing import Router, RouteStatus
from .net.streams import abort, tunnel_streams

if TYPE_CHECKING:
    from .config_schema import BotSessionConfig

__all__ = ["RouteConnection", "telethon_connection"]

Codec = Literal["full", "abridged", "intermediate", "obfuscated"]
"""Telethon's MTProto transports over TCP: TcpFull (Telethon's default), TcpAbridged,
TcpIntermediate, TcpObfuscated (obfuscated2: abridged, AES-CTR encrypted with a random key, so
that the stream does not look like MTProto to a middlebox)."""

_CODECS: dict[str, type[Any]] = {
    "full": ConnectionTcpFull,
    "abridged": ConnectionTcpAbridged,
    "intermediate": ConnectionTcpIntermediate,
    "obfuscated": ConnectionTcpObfuscated,
}


class RouteConnection(Connection):  # type: ignore[misc] # Telethon has no type hints
    """A Telethon connection whose stream goes through the routes of ``router`` (None: direct).

    Not used as such: ``telethon_connection`` makes a subclass with Telethon's codec of choice
    and its own router.
    """

    router: ClassVar[Router | None] = None
    """The routes of every connection of this class; None: no routes, direct connections."""
    _made: ClassVar[weakref.WeakSet[RouteConnection]]
    """The connections of this class (Telethon makes one per DC it talks to)."""
    _connecting = False
    _reader: asyncio.StreamReader | None
    _writer: asyncio.StreamWriter | None

    def __init__(
        self,
        ip: str,
        port: int,
        dc_id: int,
        *,
        loggers: Any,
        proxy: Any = None,
        local_addr: Any = None,
    ) -> None:
        if proxy:
            raise ValueError(
                "TelegramClient(proxy=...) cannot be combined with a botsession connection: "
                "give the proxy to botsession's configuration (proxy:, fallback:) instead"
            )
        if local_addr is not None and self.router is not None:
            raise ValueError(
                "TelegramClient(local_addr=...) cannot be combined with botsession's proxy "
                "routes: the route decides where its connections leave from"
            )
        super().__init__(ip, port, dc_id, loggers=loggers, proxy=None, local_addr=local_addr)
        self._made.add(self)

    @classmethod
    def route_status(cls) -> tuple[RouteStatus, ...]:
        """Each route's state (``active``, ``standby``, ``failed``), last error, when that
        changed and how long each hop took (see ``Router.route_status``); empty without
        routes."""
        return () if cls.router is None else cls.router.route_status()

    async def connect(self, timeout: float | None = None, ssl: Any = None) -> None:
        self._connecting = True
        try:
            await super().connect(timeout=timeout, ssl=ssl)
        finally:
            self._connecting = False

    async def _connect(self, timeout: float | None = None, ssl: Any = None) -> None:
        router = self.router
        if router is None:
            await super()._connect(timeout=timeout, ssl=ssl)
            return
        # The route's own connect_timeout bounds each route (Telethon's ``timeout`` would cut
        # a fallback short and hide which hop was slow); ``ssl`` is only for HTTP transports.
        failure: RouteError | None = None
        try:
            tunnel = await router.connect(self._ip, self._port)
        except RouteError as error:
            failure = error
        if failure is not None:
            # Raised outside the except block so that the error is not its own context.
            raise framework_error(failure, ConnectionError)
        self._reader, self._writer = tunnel_streams(tunnel)
        self._codec = self.packet_codec(self)
        try:
            self._init_conn()
            await self._writer.drain()
        except BaseException:
            abort(self._writer)
            raise

    @property
    def live(self) -> bool:
        """Connected, or connecting."""
        return bool(self._connected or self._connecting)

    async def disconnect(self) -> None:
        try:
            await super().disconnect()
        finally:
            await close_when_idle(self.router, self._made)


def telethon_connection(
    config: ConfigInput = None,
    *,
    codec: Codec = "full",
    env_prefix: str = "BOT_",
    env_file: str | PathLike[str] | None = None,
    profile: str | None = None,
    **overrides: Any,
) -> type[RouteConnection]:
    """A Telethon connection class (``TelegramClient(..., connection=...)``) whose connections
    go through the configured routes, with Telethon's ``codec``: ``"full"`` (TcpFull,
    Telethon's default), ``"abridged"``, ``"intermediate"`` or ``"obfuscated"`` (obfuscated2,
    TcpObfuscated).

    The other arguments are those of ``load_config``; bad configuration raises
    ``ConfigError``. Each call makes a new class with a router of its own: give each client
    its own (or share one between clients on the same event loop, sharing the routes'
    health). ``route_status()`` on the class tells each route's state.
    """
    loaded = load_outcome(
        config, env_prefix=env_prefix, env_file=env_file, profile=profile, **overrides
    )
    del config, overrides  # raw input (passwords) stays out of the traceback's locals
    if isinstance(loaded, ConfigError):
        raise loaded
    base = _CODECS.get(codec) if isinstance(codec, str) else None
    if base is None:
        choices = ", ".join(repr(name) for name in get_args(Codec))
        raise ConfigError(
            [Problem("keyword argument codec=", "", f"must be one of {choices}, not {codec!r}")]
        )
    return _connection_class(loaded.config, base)


def _connection_class(config: BotSessionConfig, base: type[Any]) -> type[RouteConnection]:
    router = router_for(config)
    # Telethon names the mode after the class, without "Connection": ``…:443/RouteTcpFull``
    # in its logs. A subclass of Telethon's class of the codec too, for whoever checks.
    name = "Route" + base.__name__
    namespace = {
        "__module__": __name__,
        "__doc__": RouteConnection.__doc__,
        "packet_codec": base.packet_codec,
        "router": router,
        "_made": weakref.WeakSet(),
    }
    return type(name, (RouteConnection, base), namespace)
