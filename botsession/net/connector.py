"""The aiohttp connector that carries requests through proxy routes.

aiohttp asks a connector for a connection to ``host:port``; this one gets it from a ``Router``
(the tunnel through the first route that is ready, TLS with the server included) and hands it
to aiohttp's own protocol. Failures come out as ``ProxyHopError`` / ``AllRoutesFailedError``
that are also ``aiohttp.ClientConnectionError``s, which aiogram reports as
``TelegramNetworkError``.

The connector remembers which route each connection goes through. When the router changes its
active route, connections through other routes are not reused: idle ones are closed, busy ones
are closed when their response is done, so traffic really moves (back) to the active route.
An idle connection is looked at before it is reused: one that its proxy (or the server) has
closed or reset meanwhile is dropped and another is used, even when the event loop has not yet
read the close (aiohttp alone would hand it to the request, which would then fail to write).
And a request whose connection was gone before the kernel took a single byte of it — provably
unsent — is sent once more (``resend_unsent``, a client middleware every adapter installs),
on another connection through the route now active; one that may have been sent never is.
Closing the connector stops the router's background checks; every adapter (aiogram, PTB, httpx,
a plain aiohttp session) closes its connector when it is closed.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import socket
import weakref
from collections.abc import Callable
from ssl import SSLContext, create_default_context
from typing import TYPE_CHECKING, Any, Literal, cast

import aiohttp
import certifi
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_proto import ResponseHandler
from yarl import URL

from ..errors import (
    CertificateMismatch,
    ProxyHopError,
    RouteError,
    framework_error,
    route_name,
    tell_where,
)
from ..redaction import Secrets, redact_exception, redact_url, token_secrets
from .routing import ConnectorSpec, Router

logger = logging.getLogger("botsession")

if TYPE_CHECKING:
    from aiohttp.client_middlewares import ClientHandlerType, ClientMiddlewareType
    from aiohttp.client_reqrep import ClientRequest, ConnectionKey, RequestInfo
    from aiohttp.connector import Connection
    from aiohttp.tracing import Trace

    from ..config_schema import ProxyRoute, TlsSettings
    from .routing import RouteStatus
    from .tunnel import Tunnel


def ssl_context(tls: TlsSettings) -> SSLContext | Literal[False]:
    """The TLS context for the Bot API server (certifi's CAs unless ``ca_file`` is given)."""
    if not tls.verify:
        return False
    cafile = str(tls.ca_file) if tls.ca_file is not None else certifi.where()
    stat = os.stat(cafile)
    return _context(cafile, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _context(cafile: str, _mtime_ns: int, _size: int) -> SSLContext:
    # Loading a CA bundle takes ~25 ms; contexts are safe to share, so sessions reuse one as
    # long as the file is unchanged (its time and size are part of the key).
    return create_default_context(cafile=cafile)


def connector_arguments(spec: ConnectorSpec) -> tuple[type[aiohttp.TCPConnector], dict[str, Any]]:
    """The connector class and its keyword arguments; limit and TLS are kept with a proxy too."""
    arguments: dict[str, Any] = {
        "ssl": ssl_context(spec.tls),
        "limit": spec.limit,
        "ttl_dns_cache": spec.ttl_dns_cache,
    }
    if not spec.routes:
        return DirectConnector, arguments
    router = Router(
        spec.routes,
        connect_timeout=spec.connect_timeout,
        retry_primary_after=spec.retry_primary_after,
        hedge_after=spec.hedge_after,
        limit=spec.limit,
    )
    arguments["router"] = router
    return RouteConnector, arguments


class DirectConnector(aiohttp.TCPConnector):
    """aiohttp's own connector, for a configuration without routes: its class tells the
    sessions botsession built apart from others (``botsession.route_status``)."""

    def route_status(self) -> tuple[RouteStatus, ...]:
        """No routes: always empty."""
        return ()


def client_session(spec: ConnectorSpec, *, timeout: float) -> aiohttp.ClientSession:
    """A plain aiohttp session over the routes of ``spec``, whose errors never show the bot
    token of a Bot API URL (see ``MaskedResponse`` and ``masking_errors``)."""
    connector_type, arguments = connector_arguments(spec)
    connector = connector_type(**arguments)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=spec.connect_timeout),
        response_class=MaskedResponse,
        middlewares=(masking_errors, *resending(connector)),
    )


def resending(connector: aiohttp.BaseConnector) -> tuple[ClientMiddlewareType, ...]:
    """The client middlewares a session on ``connector`` needs: ``resend_unsent`` through
    routes, none for direct connections."""
    return (connector.resend_unsent,) if isinstance(connector, RouteConnector) else ()


async def masking_errors(
    request: ClientRequest, handler: ClientHandlerType
) -> aiohttp.ClientResponse:
    """An aiohttp client middleware: errors of connecting, sending and reading the head of a
    response ("Connection timeout to host https://…/bot<token>/getMe", "Can not write request
    body for …") leave without the token's secret."""
    try:
        return await handler(request)
    except BaseException as error:
        redact_exception(error, Secrets(token_secrets(str(request.url))))
        raise


class MaskedResponse(aiohttp.ClientResponse):
    """aiohttp's response whose ``request_info`` and ``repr`` show the bot token's secret as
    ``***``: the errors built from them later (``raise_for_status()``, a ``json()`` of an HTML
    page) and the "Unclosed response" report do not show it. ``url`` stays the real URL."""

    @property
    def request_info(self) -> RequestInfo:
        info = self._request_info
        url, real_url = _masked(info.url), _masked(info.real_url)
        if url is info.url and real_url is info.real_url:
            return info
        return info._replace(url=url, real_url=real_url)

    def __repr__(self) -> str:
        return redact_url(super().__repr__())


def _masked(url: URL) -> URL:
    text = str(url)
    masked = redact_url(text)
    return url if masked == text else URL(masked, encoded=True)


class _NamesLeftToTheRoute(AbstractResolver):
    """aiohttp's resolver for a connector on routes: the server's name is not looked up here
    but handed on as it is to the router, which looks up on this machine only the names it
    must (the first hop's, and those a socks4 or ``rdns: false`` socks5 hop cannot resolve)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {"hostname": host, "host": host, "port": port, "family": family, "proto": 0, "flags": 0}
        ]

    async def close(self) -> None:
        """Nothing to close: nothing was opened."""


class RouteConnector(aiohttp.TCPConnector):
    """An aiohttp connector whose connections go through ``router``'s routes."""

    def __init__(self, router: Router, **kwargs: Any) -> None:
        super().__init__(resolver=_NamesLeftToTheRoute(), **kwargs)
        self.router = router
        # The router's sockets include idle connections: it may ask for one to be closed.
        router.sockets.reclaim = self._close_an_idle_connection
        self._route_of: weakref.WeakKeyDictionary[ResponseHandler, int] = (
            weakref.WeakKeyDictionary()
        )
        self._switches_seen = router.switches
        self._handed: weakref.WeakKeyDictionary[
            ClientRequest, tuple[_TunnelHandler, int | None]
        ] = weakref.WeakKeyDictionary()
        """Each request's connection, and the bytes sent on it before the request had it (None:
        not known)."""

    @property
    def route(self) -> ProxyRoute:
        """The route new connections go through first."""
        return self.router.route

    @property
    def connect_timeout(self) -> float:
        return self.router.connect_timeout

    def route_status(self) -> tuple[RouteStatus, ...]:
        """Each route's state (``active``, ``standby``, ``failed``), last error, when that
        changed, and how long each hop took to answer (see ``Router.route_status``)."""
        return self.router.route_status()

    def __repr__(self) -> str:
        return f"RouteConnector({self.route!r}, limit={self.limit})"

    async def connect(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        if self.router.switches != self._switches_seen:
            self._switches_seen = self.router.switches
            self._retire_idle()
        connection = await super().connect(req, traces, timeout)
        protocol = connection.protocol
        if isinstance(protocol, _TunnelHandler):
            protocol.idle = False
            self._handed[req] = (protocol, protocol.bytes_sent())
        return connection

    def unsent(self, request: ClientRequest) -> bool:
        """Whether ``request`` provably never left: its connection is gone, and the kernel took
        no byte from it after the request was handed the connection."""
        protocol, before = self._handed.get(request, (None, None))
        if protocol is None or before is None:
            return False
        return protocol.lost and protocol.bytes_sent() == before

    async def resend_unsent(
        self, request: ClientRequest, handler: ClientHandlerType
    ) -> aiohttp.ClientResponse:
        """A client middleware: a request whose connection was gone before a byte of it was
        sent (a reset that came just as it was handed the connection) is sent once more, on a
        new connection through the route now active, when its body can be sent again. One that
        may have been sent, in part or whole, fails as it did: it is never sent twice."""
        try:
            return await handler(request)
        except (aiohttp.ClientConnectorError, aiohttp.ServerTimeoutError, RouteError):
            raise  # connecting failed (the router has tried every route), or a timeout
        except aiohttp.ClientConnectionError as error:
            await request.close()  # the body's writer has ended (and rewound what it can)
            await asyncio.sleep(0)  # the connection's close, if under way, has come through
            body: Any = request.body
            replayable = body == b"" or not getattr(body, "consumed", True)
            unsent = self.unsent(request)
            if not (unsent and replayable):
                self._tell_where(request, error, _fate(unsent=unsent, again=False))
                raise
            # Not the error's text: aiohttp's quotes the URL, which holds the bot token.
            logger.info("request sent again: its connection was gone before it was sent")
        try:
            return await handler(request)
        except (aiohttp.ClientConnectorError, aiohttp.ServerTimeoutError, RouteError):
            raise
        except aiohttp.ClientConnectionError as error:
            await asyncio.sleep(0)  # as above: the count of bytes sent is final
            self._tell_where(request, error, _fate(unsent=self.unsent(request), again=True))
            raise

    def _tell_where(
        self, request: ClientRequest, error: aiohttp.ClientConnectionError, fate: str
    ) -> None:
        """Name, in ``error``, the route of the connection that failed under ``request``."""
        protocol, _ = self._handed.get(request, (None, None))
        index = self._route_of.get(protocol) if protocol is not None else None
        if index is None:
            return
        route = self.router.routes[index]  # its str masks passwords
        tell_where(error, f"on a tunnel through route {route_name(index)} ({route}); {fate}")

    def _release(
        self, key: ConnectionKey, protocol: ResponseHandler, *, should_close: bool = False
    ) -> None:
        # A connection through a route that is no longer the active one goes back to no pool.
        retired = self._route_of.get(protocol, self.router.active) != self.router.active
        super()._release(key, protocol, should_close=should_close or retired)
        if isinstance(protocol, _TunnelHandler):
            protocol.idle = True  # pooled, unless it was closed (then it is never looked at)

    def _retire_idle(self) -> None:
        """Close the idle connections through other routes than the active one (aiohttp skips
        closed connections when it takes one from its pool)."""
        active = self.router.active
        pools: Any = getattr(self, "_conns", {})
        for pool in list(pools.values()):
            for protocol, *_ in list(pool):
                if self._route_of.get(protocol, active) != active:
                    protocol.close()

    def _close_an_idle_connection(self) -> bool:
        """Close the idle connection that has waited longest, if there is one."""
        pools: Any = getattr(self, "_conns", {})
        oldest: tuple[float, Any, Any] | None = None
        for pool in pools.values():
            for entry in pool:
                if oldest is None or entry[1] < oldest[0]:
                    oldest = (entry[1], pool, entry)
        if oldest is None:
            return False
        _, pool, (protocol, _since) = oldest
        pool.remove(oldest[2])
        protocol.close()
        return True

    def _close(self, *args: Any, **kwargs: Any) -> Any:
        self.router.stop()  # aiohttp's close, in every version, comes through here at once
        return super()._close(*args, **kwargs)

    async def close(self, **kwargs: Any) -> None:
        await super().close(**kwargs)
        await self.router.close()  # and wait until the background checks have ended

    async def _wrap_create_connection(
        self, *args: Any, addr_infos: list[Any], **kwargs: Any
    ) -> tuple[asyncio.Transport, ResponseHandler]:
        host, port = addr_infos[0][4][:2]
        ssl: SSLContext | None = kwargs.get("ssl") or None
        request: ClientRequest | None = kwargs.get("req")
        fingerprint = self._get_fingerprint(request) if request is not None and ssl else None
        failure: RouteError | None = None
        try:
            index, tunnel = await self.router.open(
                host,
                port,
                ssl=ssl,
                server_hostname=kwargs.get("server_hostname") or host,
                pin=None if fingerprint is None else _pinned(fingerprint.fingerprint),
            )
        except RouteError as error:
            failure = error
        if failure is not None:
            # Raised outside the except block so that the error is not its own context.
            raise _as_aiohttp_error(failure, host, port)
        protocol = _TunnelHandler(self._loop, tunnel)
        self._route_of[protocol] = index
        return tunnel.hand_over(protocol), protocol


def _pinned(expected: bytes) -> Callable[[asyncio.Transport], None]:
    """A check of the server's certificate against aiohttp's ``Fingerprint`` (SHA-256), made
    inside the route's connect phase: a mismatch fails the route (``tls``) like any other TLS
    failure, and the next route takes over. (aiohttp's own check would blame the proxy's
    address, which it finds in the socket, and fail to find it among the target's.)"""

    def check(transport: asyncio.Transport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        got = hashlib.sha256(der or b"").digest()
        if got != expected:
            raise CertificateMismatch(expected, got)

    return check


def _as_aiohttp_error(error: RouteError, host: str, port: int) -> RouteError:
    """``error`` as aiohttp's network error; aiohttp's ``ServerFingerprintMismatch`` when every
    route failed on the pinned certificate, with its ``expected``, ``got``, ``host``, ``port``."""
    hop_errors = _hop_errors(error)
    mismatches = [
        cause
        for hop_error in hop_errors
        if isinstance(cause := hop_error.__cause__, CertificateMismatch)
    ]
    if not mismatches or len(mismatches) != len(hop_errors):
        return framework_error(error, aiohttp.ClientConnectionError)
    flavoured: Any = framework_error(error, aiohttp.ServerFingerprintMismatch)
    flavoured.expected, flavoured.got = mismatches[-1].expected, mismatches[-1].got
    flavoured.host, flavoured.port = host, port
    return cast(RouteError, flavoured)


def _hop_errors(error: RouteError) -> list[ProxyHopError]:
    if isinstance(error, ProxyHopError):
        return [error]
    return [hop_error for _number, hop_error in getattr(error, "failures", ())]


class _TunnelHandler(ResponseHandler):
    """aiohttp's protocol for a connection through a tunnel: when the connection is gone, the
    tunnel gives its socket back to the router's ``limit``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tunnel: Tunnel) -> None:
        super().__init__(loop)
        self._release: Callable[[], None] | None = tunnel.release
        self.bytes_sent = tunnel.bytes_sent
        self.idle = False
        """In the connector's pool, waiting for a request."""
        self.lost = False
        """The connection is gone: nothing more can be sent on it."""

    def is_connected(self) -> bool:
        # aiohttp asks before it reuses an idle connection (and when it cleans its pool): one
        # whose socket is closed or reset, though the event loop has not read that yet, is not.
        if not super().is_connected():
            return False
        return not (self.idle and _dropped(self.transport))

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        try:
            super().connection_lost(exc)
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


def _dropped(transport: asyncio.BaseTransport | None) -> bool:
    """Whether the socket under ``transport`` (an idle connection) has been closed or reset by
    the other side, or has bytes nobody asked for (an idle HTTP connection gets none but a
    close): a peek at the socket, without reading or blocking, as urllib3 and httpcore look."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    dont_wait = getattr(socket, "MSG_DONTWAIT", None)
    if sock is None or dont_wait is None:
        return False
    descriptor = sock.fileno()
    if descriptor < 0:
        return True
    # A second socket object on the same descriptor (asyncio's wrapper does not read), let go
    # of before it is collected so that the descriptor stays open.
    peek = socket.socket(sock.family, sock.type, sock.proto, descriptor)
    try:
        peek.recv(1, socket.MSG_PEEK | dont_wait)
    except (BlockingIOError, InterruptedError):
        return False  # open, nothing to read
    except OSError:
        return True  # reset
    finally:
        peek.detach()
    return True  # closed (b"") or unasked-for bytes


def _fate(*, unsent: bool, again: bool) -> str:
    """What became of a request whose connection failed, for its error message."""
    if again:
        if unsent:
            return "the request was not sent, on this connection nor on the one before"
        return (
            "the request was sent once more (nothing of it had left the first time) and may "
            "have been sent now, so it is not sent again"
        )
    if unsent:
        return "the request was not sent, but its body cannot be sent again"
    return "the request may have been sent, so it is not sent again"
