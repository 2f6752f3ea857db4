"""Opening a TCP tunnel through every hop of a route, pinning any failure on its hop.

python-socks does the protocol work; each hop is wrapped so that an error names the hop where it
happened and the whole route shares one deadline.
"""

from __future__ import annotations

import asyncio
import errno
from ssl import SSLContext, SSLError
from typing import TYPE_CHECKING, Any

from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType
from python_socks.async_.asyncio.v2 import Proxy

from .proxy_errors import ProxyHopError, Reason

if TYPE_CHECKING:
    from .config_schema import ProxyHop, ProxyRoute

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
