"""The aiohttp connector that carries requests through proxy routes.

It builds on aiohttp-socks' chain connector but opens the chain itself (``botsession.tunnel``),
so that a failure names its hop, the whole route shares one ``connect_timeout``, and a failed
connect can move on to a fallback route before any request was sent.
"""

from __future__ import annotations

import asyncio
import functools
import os
from ssl import SSLCertVerificationError, SSLContext, SSLError, create_default_context
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import certifi
from aiohttp.client_proto import ResponseHandler
from aiohttp_socks import ChainProxyConnector

from .proxy_errors import AllRoutesFailedError, ProxyHopError
from .selector import RouteSelector
from .tunnel import open_tunnel

if TYPE_CHECKING:
    from .config_schema import ProxyRoute, TlsSettings
    from .factory import ConnectorSpec


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
        return aiohttp.TCPConnector, arguments
    selector = RouteSelector(spec.routes, spec.retry_primary_after)
    arguments.update(selector=selector, connect_timeout=spec.connect_timeout)
    return RouteConnector, arguments


def client_session(spec: ConnectorSpec, *, timeout: float) -> aiohttp.ClientSession:
    """A plain aiohttp session over the routes of ``spec``."""
    connector_type, arguments = connector_arguments(spec)
    return aiohttp.ClientSession(
        connector=connector_type(**arguments),
        timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=spec.connect_timeout),
    )


class RouteConnector(ChainProxyConnector):
    """Connects through the active route of ``selector``, falling back in the connect phase."""

    def __init__(self, selector: RouteSelector, *, connect_timeout: float, **kwargs: Any) -> None:
        # The parent's proxy list stays empty: the hops (and their passwords) live in the
        # immutable routes, whose repr is redacted, and chains are opened by botsession.tunnel.
        super().__init__(proxy_infos=(), **kwargs)
        self.selector = selector
        self.connect_timeout = connect_timeout

    @property
    def route(self) -> ProxyRoute:
        """The route new connections go through first."""
        return self.selector.routes[self.selector.active]

    def __repr__(self) -> str:
        return f"RouteConnector({self.route!r}, limit={self.limit})"

    async def _wrap_create_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._wrap_create_connection(*args, **kwargs)
        except SSLCertVerificationError as error:
            # TLS with the Bot API server failed end to end; report it as aiohttp does for a
            # direct connection (aiogram then raises TelegramNetworkError).
            raise aiohttp.ClientConnectorCertificateError(
                kwargs["req"].connection_key, error
            ) from error
        except SSLError as error:
            raise aiohttp.ClientConnectorSSLError(kwargs["req"].connection_key, error) from error

    async def _connect_via_proxy(
        self,
        host: str,
        port: int,
        ssl: SSLContext | None = None,
        timeout: float | None = None,
    ) -> tuple[asyncio.Transport, ResponseHandler]:
        routes = self.selector.routes
        failures: list[tuple[int, ProxyHopError]] = []
        for index in self.selector.order(self._loop.time()):
            try:
                connection = await self._connect_route(
                    routes[index], host, port, ssl, timeout or self.connect_timeout
                )
            except ProxyHopError as error:
                # Nothing was sent yet: trying the next route cannot repeat a request.
                failures.append((index, error))
                self.selector.failed(index, self._loop.time())
                continue
            self.selector.succeeded(index, failures)
            return connection
        if len(routes) == 1:
            raise failures[0][1]
        numbered = [(index + 1, error) for index, error in failures]
        raise AllRoutesFailedError(routes, numbered) from failures[-1][1]

    async def _connect_route(
        self, route: ProxyRoute, host: str, port: int, ssl: SSLContext | None, timeout: float
    ) -> tuple[asyncio.Transport, ResponseHandler]:
        # TLS with the server is started here rather than by python-socks: on Python < 3.11 its
        # stream hangs when the certificate is refused, turning a clear error into a timeout.
        stream, attempt = await open_tunnel(route, host, port, timeout)
        tunnel: Any = stream.writer.transport
        protocol = _TunnelProtocol(self._loop, stream.writer)
        if ssl is None:
            tunnel.set_protocol(protocol)
            protocol.connection_made(tunnel)
            return tunnel, protocol
        try:
            transport: Any = await self._loop.start_tls(
                tunnel,
                protocol,
                ssl,
                server_hostname=host,
                ssl_handshake_timeout=attempt.remaining(),
            )
        except BaseException as error:
            tunnel.abort()
            if isinstance(error, (OSError, asyncio.TimeoutError)) and not isinstance(
                error, SSLError
            ):
                raise attempt.tls_failure(error) from error
            raise  # certificate and other TLS errors: mapped by _wrap_create_connection
        protocol.connection_made(transport)
        return transport, protocol


class _TunnelProtocol(ResponseHandler):
    def __init__(self, loop: asyncio.AbstractEventLoop, writer: asyncio.StreamWriter) -> None:
        super().__init__(loop)
        # StreamWriter.__del__ (Python >= 3.11.5) closes the transport once the writer is
        # collected, so the protocol keeps it alive for as long as the connection lives.
        self._writer = writer
