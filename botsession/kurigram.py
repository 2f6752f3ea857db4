"""kurigram (the maintained Pyrogram) over botsession routes: a ``connection_factory=`` class.

``kurigram_connection`` builds, from ``bot.yaml`` / ``BOT_…`` variables / keyword arguments, a
kurigram connection class whose MTProto streams to the data centers go through the configured
route — every hop kind, chains, fallback routes with hedged connects and background checks
(their target is the last DC dialled), ``limit``, ``connect_timeout``::

    from pyrogram import Client
    from botsession.kurigram import kurigram_connection

    app = Client("bot", api_id, api_hash, bot_token=token,
                 connection_factory=kurigram_connection("bot.yaml"))

kurigram's own transport (``protocol_factory=``: TCPAbridged by default, TCPFull,
TCPIntermediate, the obfuscated TCPAbridgedO / TCPIntermediateO) still frames the stream; only
the socket under it comes from the route. The class holds one router, shared by every
connection kurigram opens with it (main, media and temporary sessions, the key exchange).

Connecting takes at most ``connect_timeout`` for each route; hedging and fallback happen only
while connecting, so botsession never sends anything twice (kurigram's own restarts and
resends are kurigram's). When the route fails:

- before any connection of the class ever got through (``app.start()``, ``app.connect()``),
  ``connect()`` raises botsession's ``ProxyHopError`` / ``AllRoutesFailedError``, naming the
  hop, at once. kurigram's key exchange tries again a second later, up to five times: those
  tries, within six seconds of the failure, get the same error without dialling the dead
  route again (a connect after that dials again). As a ``ConnectionError`` it would be
  swallowed: a session with a key would "connect" and retry in the background for ever.
- once the client has been connected, a route failure is a ``ConnectionError`` that is also
  the ``ProxyHopError`` / ``AllRoutesFailedError``, after a pause of a second: kurigram
  restarts the session on it, as on any network error, and the bot keeps running; its log
  line names the hop. ``route_status()`` tells each route's state meanwhile.

Give the proxy to botsession, not to kurigram: ``Client(proxy=...)`` with this class raises
``ValueError`` when connecting (an MTProxy secret would also change kurigram's framing). A
configuration without routes uses kurigram's own direct connection.

When no connection of the class is connected or connecting any more (``app.stop()``), the
router's background checks stop; they resume with the next connect.

This is the only module that imports kurigram (``pip install 'botsession[kurigram]'``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import ConfigError, MissingExtraError, RouteError, SessionClosedError, framework_error

try:
    from pyrogram.connection import Connection
    from pyrogram.connection.transport import TCP, TCPAbridged
except ImportError as missing:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingExtraError(__name__, "kurigram", "kurigram", missing.name) from missing

from .factory import ConfigInput, load_outcome
from .mtproto import RoutedConnection, routed_namespace
from .net.streams import abort, tunnel_streams

if TYPE_CHECKING:
    from .net.routing import Router

__all__ = ["RouteConnection", "kurigram_connection"]

RESTART_PAUSE = 1.0
"""Seconds a failed connect waits before it raises, once the client has been connected:
kurigram restarts the session at once on it (its own connection waits a second between
attempts too)."""
REPEAT_WINDOW = 6.0
"""Seconds during which, before the first connection got through, a new connect gets the
last failure again instead of dialling: kurigram's key exchange tries five more times, a
second apart."""


@dataclass
class _ClassState:
    """What the connections of one ``kurigram_connection`` class have seen."""

    connected_once: bool = False
    start_failure: tuple[float, RouteError] | None = None
    """Before the first connection got through: when the last connect failed, and why."""


class RouteConnection(RoutedConnection, Connection):
    """A kurigram connection whose stream goes through the routes of ``router`` (None: direct).

    Not used as such: ``kurigram_connection`` makes a subclass with its own router.
    """

    _transports: ClassVar[dict[type[TCP], type[TCP]]]
    """kurigram's transport classes, each with its socket taken from the route."""
    _state: ClassVar[_ClassState]
    _connecting = False
    _open = False
    _closed = False
    _dialling: asyncio.Future[None] | None = None

    def __init__(
        self,
        dc_id: int,
        server_address: str,
        port: int,
        test_mode: bool,
        *,
        proxy: Any = None,
        media: bool = False,
        protocol_factory: type[TCP] = TCPAbridged,
        crypto_executor_workers: int = 1,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if proxy is not None:
            raise ValueError(
                "Client(proxy=...) cannot be combined with a botsession connection: give the "
                "proxy to botsession's configuration (proxy:, fallback:) instead"
            )
        super().__init__(
            dc_id,
            server_address,
            port,
            test_mode,
            proxy=None,
            media=media,
            protocol_factory=protocol_factory,
            crypto_executor_workers=crypto_executor_workers,
            loop=loop,
        )
        self._made_now()

    @property
    def live(self) -> bool:
        """Connected, or connecting."""
        return self._open or self._connecting

    async def connect(self) -> None:
        self._connecting = True
        try:
            if self.router is None:
                await super().connect()
            else:
                await self._connect_through_route()
            self._open = True
        finally:
            self._connecting = False

    async def _connect_through_route(self) -> None:
        state = self._state
        repeated = state.start_failure
        if repeated is not None and time.monotonic() - repeated[0] < REPEAT_WINDOW:
            raise repeated[1].with_traceback(None)
        failure = SessionClosedError() if self._closed else await self._dial()
        if failure is None:
            state.connected_once, state.start_failure = True, None
            return
        if not state.connected_once:
            state.start_failure = (time.monotonic(), failure)
            raise failure
        # kurigram restarts the session on a ConnectionError, at once and for as long as the
        # client runs: the pause keeps that from dialling a dead route in a tight loop.
        await asyncio.sleep(RESTART_PAUSE)
        raise framework_error(failure, ConnectionError)

    async def _dial(self) -> RouteError | None:
        """Open ``self.protocol`` through the route; why that failed, or None."""
        self.protocol = transport = self._routed(self.protocol_factory)(
            ipv6=self.ipv6,
            proxy=None,
            crypto_executor_workers=self.crypto_executor_workers,
            loop=self.loop,
            dc_id=self._protocol_dc_id,
        )
        # A task of its own, so that close() (kurigram stopping the session) can end it.
        self._dialling = dialling = asyncio.ensure_future(
            transport.connect((self.server_address, self.port))
        )
        failure: RouteError | None = None
        try:
            await dialling
        except RouteError as error:
            failure = error
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                await self._drop(transport)
                raise  # this connect itself was cancelled
            failure = SessionClosedError()  # close() ended the dial
        except BaseException:
            await self._drop(transport)
            raise
        finally:
            self._dialling = None
        if failure is None and self._closed:
            failure = SessionClosedError()  # closed as the tunnel came: nothing to keep
        if failure is not None:
            await self._drop(transport)
        return failure

    @classmethod
    def _routed(cls, framing: type[TCP]) -> type[TCP]:
        """kurigram's transport ``framing`` on a socket from this class's route."""
        routed = cls._transports.get(framing)
        if routed is None:
            # The MRO runs framing.connect (its tag, its obfuscation header) on top of
            # _RoutedTCP.connect, which replaces TCP's own dialling.
            namespace = {"__module__": __name__, "router": cls.router}
            routed = type(f"Route{framing.__name__}", (framing, _RoutedTCP), namespace)
            cls._transports[framing] = routed
        return routed

    async def close(self) -> None:
        self._closed = True
        if self._dialling is not None:
            self._dialling.cancel()
        try:
            if self.protocol is not None:
                await self._drop(self.protocol)
        finally:
            self._open = False
            await self._close_router_when_idle()

    @staticmethod
    async def _drop(transport: TCP) -> None:
        try:
            await transport.close()
        finally:
            abort(transport.writer)
            # Each transport starts a crypto thread on first use (obfuscated framings);
            # kurigram never stops it.
            transport.crypto_executor.shutdown(wait=False)


class _RoutedTCP(TCP):
    """kurigram's TCP transport whose socket is a tunnel through ``router``."""

    router: ClassVar[Router]

    async def connect(self, address: tuple[str, int]) -> None:
        host, port = address
        tunnel = await self.router.connect(host, port)
        self.reader, self.writer = tunnel_streams(tunnel)


def kurigram_connection(
    config: ConfigInput = None,
    *,
    env_prefix: str = "BOT_",
    env_file: str | PathLike[str] | None = None,
    profile: str | None = None,
    **overrides: Any,
) -> type[RouteConnection]:
    """A kurigram connection class (``Client(..., connection_factory=...)``) whose
    connections go through the configured routes, framed by kurigram's own transport
    (``protocol_factory=``, TCPAbridged by default).

    The arguments are those of ``load_config``; bad configuration raises ``ConfigError``.
    Each call makes a new class with a router of its own: give each client its own (or share
    one between clients on the same event loop, sharing the routes' health).
    ``route_status()`` on the class tells each route's state.
    """
    loaded = load_outcome(
        config, env_prefix=env_prefix, env_file=env_file, profile=profile, **overrides
    )
    del config, overrides  # raw input (passwords) stays out of the traceback's locals
    if isinstance(loaded, ConfigError):
        raise loaded
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__doc__": RouteConnection.__doc__,
        **routed_namespace(loaded.config),
        "_transports": {},
        "_state": _ClassState(),
    }
    return type("RouteConnection", (RouteConnection,), namespace)
