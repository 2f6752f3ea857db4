"""The aiohttp connector that carries requests through proxy routes.

aiohttp asks a connector for a connection to ``host:port``; this one gets it from a ``Router``
(the tunnel through the active route, TLS with the server included) and hands it to aiohttp's
own protocol. Failures come out as ``ProxyHopError`` / ``AllRoutesFailedError`` that are also
``aiohttp.ClientConnectionError``s, which aiogram reports as ``TelegramNetworkError``.
"""

from __future__ import annotations

import functools
import os
from ssl import SSLContext, create_default_context
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import certifi
from aiohttp_socks import ChainProxyConnector

from ..errors import RouteError, framework_error
from .routing import ConnectorSpec, Router

if TYPE_CHECKING:
    import asyncio

    from aiohttp.client_proto import ResponseHandler

    from ..config_schema import ProxyRoute, TlsSettings


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
    router = Router(
        spec.routes,
        connect_timeout=spec.connect_timeout,
        retry_primary_after=spec.retry_primary_after,
    )
    arguments["router"] = router
    return RouteConnector, arguments


def client_session(spec: ConnectorSpec, *, timeout: float) -> aiohttp.ClientSession:
    """A plain aiohttp session over the routes of ``spec``."""
    connector_type, arguments = connector_arguments(spec)
    return aiohttp.ClientSession(
        connector=connector_type(**arguments),
        timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=spec.connect_timeout),
    )


class RouteConnector(ChainProxyConnector):
    """An aiohttp connector whose connections go through ``router``'s routes."""

    def __init__(self, router: Router, **kwargs: Any) -> None:
        # aiohttp-socks' chain connector brings the resolver that leaves names to the proxies;
        # its own proxy list stays empty (the routes, with their passwords, live in router).
        super().__init__(proxy_infos=(), **kwargs)
        self.router = router

    @property
    def route(self) -> ProxyRoute:
        """The route new connections go through first."""
        return self.router.route

    @property
    def connect_timeout(self) -> float:
        return self.router.connect_timeout

    def __repr__(self) -> str:
        return f"RouteConnector({self.route!r}, limit={self.limit})"

    async def _wrap_create_connection(
        self, *args: Any, addr_infos: list[Any], **kwargs: Any
    ) -> tuple[asyncio.Transport, ResponseHandler]:
        host, port = addr_infos[0][4][:2]
        ssl: SSLContext | None = kwargs.get("ssl") or None
        failure: RouteError | None = None
        try:
            tunnel = await self.router.connect(
                host, port, ssl=ssl, server_hostname=kwargs.get("server_hostname") or host
            )
        except RouteError as error:
            failure = error
        if failure is not None:
            # Raised outside the except block so that the error is not its own context.
            raise framework_error(failure, aiohttp.ClientConnectionError)
        protocol: ResponseHandler = self._factory()
        return tunnel.hand_over(protocol), protocol
