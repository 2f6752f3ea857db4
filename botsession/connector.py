"""The aiohttp connector that carries requests through a proxy route, hop by hop.

It builds on aiohttp-socks' chain connector but opens the chain itself, so that a failure is
pinned on the hop where it happened (``ProxyHopError``, an aiohttp ``ClientConnectionError`` that
aiogram reports as ``TelegramNetworkError``) and the whole route shares one ``connect_timeout``.
"""

from __future__ import annotations

import asyncio
import errno
from ssl import SSLCertVerificationError, SSLContext, SSLError, create_default_context
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import certifi
from aiohttp.client_proto import ResponseHandler
from aiohttp_socks import ChainProxyConnector
from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType
from python_socks.async_.asyncio.v2 import Proxy

from .errors import BotSessionError

if TYPE_CHECKING:
    from .config_schema import ProxyHop, ProxyRoute, TlsSettings
    from .factory import ConnectorSpec

Reason = Literal["refused", "unreachable", "timeout", "auth", "rejected", "protocol"]

_PROXY_TYPES = {
    "http": ProxyType.HTTP,
    "socks4": ProxyType.SOCKS4,
    "socks4a": ProxyType.SOCKS4,
    "socks5": ProxyType.SOCKS5,
}
# 0x5D: identd reports a different user id. 0x5C ("cannot reach identd") is left as a plain
# rejection: identd is long gone and servers reuse that code for "could not connect".
_SOCKS4_AUTH_CODES = {0x5D}
# 407 is the standard answer; tinyproxy answers a wrong password with 401.
_HTTP_AUTH_CODES = {401, 407}
# python-socks reports SOCKS5 authentication failures without a reply code.
_SOCKS5_AUTH_MARKERS = ("authentication failure", "no acceptable authentication")


class ProxyHopError(BotSessionError, aiohttp.ClientConnectionError):
    """A hop of the proxy route failed while a request was connecting.

    ``hop_number`` counts from 1 (the hop the client dials); ``reason`` is one of
    ``refused``, ``unreachable``, ``timeout``, ``auth``, ``rejected``, ``protocol``.
    """

    def __init__(
        self,
        hop_number: int,
        hop_count: int,
        hop: str,
        reason: Reason,
        detail: str,
        *,
        code: int | None = None,
    ) -> None:
        self.hop_number = hop_number
        self.hop_count = hop_count
        self.hop = hop
        self.reason: Reason = reason
        self.detail = detail
        self.code = code
        """The proxy's reply code (SOCKS reply or HTTP status), when it sent one."""
        super().__init__(f"proxy hop {hop_number} of {hop_count} ({hop}): {detail}")


def ssl_context(tls: TlsSettings) -> SSLContext | Literal[False]:
    """The TLS context for the Bot API server (certifi's CAs unless ``ca_file`` is given)."""
    if not tls.verify:
        return False
    cafile = str(tls.ca_file) if tls.ca_file is not None else certifi.where()
    return create_default_context(cafile=cafile)


def connector_arguments(spec: ConnectorSpec) -> tuple[type[aiohttp.TCPConnector], dict[str, Any]]:
    """The connector class and its keyword arguments; limit and TLS are kept with a proxy too."""
    arguments: dict[str, Any] = {
        "ssl": ssl_context(spec.tls),
        "limit": spec.limit,
        "ttl_dns_cache": spec.ttl_dns_cache,
    }
    if spec.route is None:
        return aiohttp.TCPConnector, arguments
    arguments.update(route=spec.route, connect_timeout=spec.connect_timeout)
    return RouteConnector, arguments


def client_session(spec: ConnectorSpec, *, timeout: float) -> aiohttp.ClientSession:
    """A plain aiohttp session over the route of ``spec``."""
    connector_type, arguments = connector_arguments(spec)
    return aiohttp.ClientSession(
        connector=connector_type(**arguments),
        timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=spec.connect_timeout),
    )


class RouteConnector(ChainProxyConnector):
    """Connects through every hop of a ``ProxyRoute`` in order."""

    def __init__(self, route: ProxyRoute, *, connect_timeout: float, **kwargs: Any) -> None:
        # The parent's proxy list stays empty: the hops (and their passwords) live in the
        # immutable route, whose repr is redacted, and the chain is opened below.
        super().__init__(proxy_infos=(), **kwargs)
        self.route = route
        self.connect_timeout = connect_timeout

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
        # TLS with the server is started here rather than by python-socks: on Python < 3.11 its
        # stream hangs when the certificate is refused, turning a clear error into a timeout.
        stream, attempt = await open_tunnel(self.route, host, port, timeout or self.connect_timeout)
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


async def open_tunnel(
    route: ProxyRoute, host: str, port: int, timeout: float
) -> tuple[Any, _Attempt]:
    """A plain TCP stream to ``host:port`` through every hop of ``route``, within ``timeout``.

    Raises ``ProxyHopError`` naming the hop that failed.
    """
    attempt = _Attempt(route, f"{host}:{port}", timeout)
    proxy: _HopProxy | None = None
    for number, hop in enumerate(route, start=1):
        proxy = _HopProxy(hop, number, attempt, forward=proxy)
    assert proxy is not None  # a route has at least one hop
    stream = await proxy.connect(dest_host=host, dest_port=port, timeout=attempt.timeout)
    return stream, attempt


class _TunnelProtocol(ResponseHandler):
    def __init__(self, loop: asyncio.AbstractEventLoop, writer: asyncio.StreamWriter) -> None:
        super().__init__(loop)
        # StreamWriter.__del__ (Python >= 3.11.5) closes the transport once the writer is
        # collected, so the protocol keeps it alive for as long as the connection lives.
        self._writer = writer


class _Attempt:
    """One connection attempt through the route: a shared deadline and how far it got."""

    def __init__(self, route: ProxyRoute, target: str, timeout: float) -> None:
        self.route = route
        self.target = target
        self.timeout = timeout
        self.deadline = asyncio.get_running_loop().time() + timeout
        self.reached = 0
        """Hops whose tunnel to their next address is open (they are done)."""

    def remaining(self) -> float:
        return max(0.001, self.deadline - asyncio.get_running_loop().time())

    def tls_failure(self, error: BaseException) -> ProxyHopError:
        """The tunnel was open but TLS with the server through it timed out or broke off."""
        last = self.route[len(self.route) - 1]
        if isinstance(error, (asyncio.TimeoutError, ConnectionAbortedError)):
            reason: Reason = "timeout"
            detail = f"no TLS answer from {self.target} within {self.timeout:g} s (connect timeout)"
        else:
            reason = "protocol"
            detail = f"the tunnel to {self.target} broke during the TLS handshake ({error})"
        return ProxyHopError(len(self.route), len(self.route), last.label(), reason, detail)

    def next_address(self, number: int) -> str:
        if number < len(self.route):
            return f"{self.route[number].address} (hop {number + 1})"
        return self.target


class _HopProxy(Proxy):
    """python-socks' proxy for one hop, which names the hop in any failure."""

    def __init__(
        self, hop: ProxyHop, number: int, attempt: _Attempt, forward: _HopProxy | None
    ) -> None:
        super().__init__(
            proxy_type=_PROXY_TYPES[hop.scheme],
            host=hop.host,
            port=hop.port,
            username=hop.username,
            password=hop.secret(),
            rdns=hop.rdns,
            forward=forward,
        )
        self.hop = hop
        self.number = number
        self.attempt = attempt

    async def connect(
        self,
        dest_host: str,
        dest_port: int,
        dest_ssl: SSLContext | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        # Inner hops are called by the next hop without a timeout: give them what is left.
        timeout = self.attempt.remaining() if timeout is None else timeout
        try:
            stream = await super().connect(dest_host, dest_port, dest_ssl, timeout, **kwargs)
        except (ProxyHopError, SSLError):
            raise  # already pinned on an inner hop / a TLS problem with the server, not a hop
        except ProxyTimeoutError as error:
            # The deadline is shared: the hop being worked on is the first one not yet done.
            number = min(self.attempt.reached + 1, len(self.attempt.route))
            raise self._failure(number, "timeout", error) from error
        except (ProxyError, ProxyConnectionError, OSError) as error:
            raise self._failure(self.number, _reason(self.hop, error), error) from error
        self.attempt.reached = max(self.attempt.reached, self.number)
        return stream

    def _failure(self, number: int, reason: Reason, error: Exception) -> ProxyHopError:
        route = self.attempt.route
        hop = route[number - 1]
        return ProxyHopError(
            number,
            len(route),
            hop.label(),
            reason,
            _explain(reason, hop, self.attempt, number, error),
            code=error.error_code if isinstance(error, ProxyError) else None,
        )


def _reason(hop: ProxyHop, error: Exception) -> Reason:
    if isinstance(error, ProxyConnectionError):
        return "refused" if error.errno == errno.ECONNREFUSED else "unreachable"
    if not isinstance(error, ProxyError):
        return "protocol"  # the connection broke during the handshake
    code = error.error_code
    text = str(error).lower()
    auth = (
        (hop.scheme == "http" and code in _HTTP_AUTH_CODES)
        or (hop.scheme == "socks5" and any(marker in text for marker in _SOCKS5_AUTH_MARKERS))
        or (hop.scheme in ("socks4", "socks4a") and code in _SOCKS4_AUTH_CODES)
    )
    if auth:
        return "auth"
    return "rejected" if code is not None else "protocol"


def _explain(
    reason: Reason, hop: ProxyHop, attempt: _Attempt, number: int, error: Exception
) -> str:
    detail = str(error)
    if reason == "refused":
        return "connection refused; is the proxy running and listening there?"
    if reason == "unreachable":
        return f"cannot connect: {getattr(error, 'strerror', None) or detail}"
    if reason == "timeout":
        return f"no answer within the {attempt.timeout:g} s connect timeout"
    if reason == "auth":
        has = "rejected the credentials" if hop.username is not None else "requires credentials"
        return f"the proxy {has} ({detail})"
    if reason == "rejected":
        return f"the proxy refused to connect to {attempt.next_address(number)}: {detail}"
    return (
        f"the proxy broke off the {hop.scheme} handshake ({detail or type(error).__name__}); "
        f"is it really {_article(hop.scheme)} {hop.scheme} proxy, and does it accept this request?"
    )


def _article(word: str) -> str:
    return "an" if word.startswith("h") else "a"
