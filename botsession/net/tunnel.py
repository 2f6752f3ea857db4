"""Opening a tunnel through every hop of one route, and pinning any failure on its hop.

The client dials hop 1 and then speaks each hop's protocol through the tunnel built so far
(``botsession.net.handshake``; TLS to an https hop runs through the tunnel of the hops before
it), ending with TLS to the server when it is https. The whole route
shares one deadline, ``connect_timeout``. Whatever goes wrong on the way leaves as one
``ProxyHopError`` naming the hop and a reason from the one table in ``botsession.errors``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl as _ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import HandshakeError, ProxyHopError, Reason, reason_of
from ..proxy_url import is_ip_address
from ..redaction import scrub_secrets
from .handshake import (
    FIRST_REPLIES,
    HANDSHAKES,
    PROXY_TLS_STEP,
    HandshakeStream,
    ProxyTls,
    answered_like,
    shown_reply,
)

if TYPE_CHECKING:
    from ..config_schema import ProxyHop, ProxyRoute


@dataclass
class Tunnel:
    """An open connection through a route to the target, ready for the client's protocol."""

    transport: asyncio.Transport
    stream: HandshakeStream
    hop_seconds: tuple[float, ...] = ()
    """How long each hop took to answer (its TCP connect or handshake), in hop order."""
    socket: CountingSocket | None = None
    """The socket to hop 1, which counts the bytes the kernel took from it."""
    _on_release: Callable[[], None] | None = None

    def on_release(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, when the connection is gone (``release``)."""
        self._on_release = callback

    def release(self) -> None:
        """The connection is closed (by ``close``, or by whoever it was handed over to)."""
        callback, self._on_release = self._on_release, None
        if callback is not None:
            callback()

    @property
    def proxy_tls(self) -> tuple[ProxyTls, ...]:
        """The TLS session with each https hop of the route, in hop order."""
        return tuple(self.stream.proxy_tls)

    def bytes_sent(self) -> int | None:
        """Bytes the kernel has taken to send on this connection so far (the handshakes
        included); None when that is not known (an event loop that does not write through
        Python's socket methods, as uvloop: then no byte ever counted, not even a handshake's)."""
        sock = self.socket
        return sock.sent if sock is not None and sock.sent > 0 else None

    def hand_over(self, protocol: asyncio.Protocol) -> asyncio.Transport:
        """Give the connection to ``protocol`` (aiohttp's, httpcore's) from here on."""
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        early = self.stream.take_leftover()  # a server that spoke first, after TLS
        if early:
            protocol.data_received(early)
        if self.stream.lost is not None:
            # Gone before the hand-over (the far end closed just after the last reply): the
            # transport will not tell the new protocol, so it is told here, as the loop would
            # (its socket is then given back to the router, and its request fails at once).
            asyncio.get_running_loop().call_soon(protocol.connection_lost, *self.stream.lost)
        return self.transport

    def close(self) -> None:
        self.transport.abort()
        self.release()


class CountingSocket(socket.socket):
    """A socket that counts the bytes the kernel took from ``send`` and ``sendmsg``: while the
    count has not moved since a request was handed the connection, no byte of it has left."""

    sent = 0

    def send(self, data: Any, flags: int = 0, /) -> int:
        taken = super().send(data, flags)
        self.sent += taken
        return taken

    def sendmsg(self, buffers: Any, *args: Any) -> int:
        taken = super().sendmsg(buffers, *args)
        self.sent += taken
        return taken


async def _dial(loop: asyncio.AbstractEventLoop, host: str, port: int) -> CountingSocket:
    """A connected, non-blocking ``CountingSocket`` to ``host:port``: each address the name
    has, in turn, as ``loop.create_connection`` tries them (and failing as it does)."""
    infos: list[tuple[Any, Any, int, str, Any]]
    if is_ip_address(host):  # no lookup (asyncio's would go through a thread)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        infos = [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    else:
        infos = list(await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    if not infos:
        raise OSError("getaddrinfo() returned empty list")
    errors: list[OSError] = []
    for family, kind, proto, _name, address in infos:
        sock = CountingSocket(family, kind, proto)
        try:
            sock.setblocking(False)
            # Small writes leave at once (asyncio sets this only when ``proto`` says TCP): an
            # MTProto client writes its transport tag and its first frame apart, and with
            # Nagle the frame waits for the delayed ACK of the tag, 40 ms (docs/benchmarks.md).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
        except OSError as error:
            sock.close()
            errors.append(error)
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    if len(errors) == 1 or len({str(error) for error in errors}) == 1:
        raise errors[0]
    raise OSError(f"Multiple exceptions: {', '.join(str(error) for error in errors)}")


def resolves_locally(hop: ProxyHop) -> bool:
    """Whether this machine must resolve the name of the address ``hop`` connects to."""
    return not hop.rdns


async def open_tunnel(
    route: ProxyRoute,
    host: str,
    port: int,
    *,
    timeout: float,
    ssl: _ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    hop_seconds: list[float] | None = None,
    pin: Callable[[asyncio.Transport], None] | None = None,
) -> Tunnel:
    """A connection to ``host:port`` through every hop of ``route`` within ``timeout`` seconds,
    with TLS to the server when ``ssl`` is given, whose transport ``pin`` (a certificate
    check) accepts.

    ``hop_seconds``, when given, receives each hop's time as soon as that hop has answered, so
    that a caller can tell how far a failed or cancelled attempt got (``botsession.net.routing``).
    Raises ``ProxyHopError`` naming the hop that failed; never anything else but cancellation.
    """
    attempt = _Attempt(
        route, host, port, timeout, hop_seconds=[] if hop_seconds is None else hop_seconds
    )
    try:
        return await asyncio.wait_for(attempt.run(ssl, server_hostname or host, pin), timeout)
    except asyncio.CancelledError:
        attempt.stream.abort()
        raise
    except Exception as caught:  # every failure is reported, by the one table
        error = caught
    attempt.stream.abort()
    # Raised outside the except block: the low-level error is the cause, not a context that
    # would drag its whole chain along.
    raise attempt.failure(error) from error


@dataclass
class _Attempt:
    """One attempt to connect through a route: how far it got, and why it stopped."""

    route: ProxyRoute
    host: str
    port: int
    timeout: float
    hop_number: int = 1
    """The hop being worked on (from 1); a timeout or a failure is blamed on it."""
    lookup: str | None = None
    """The name being resolved on this machine, while that is what is happening."""
    stream: HandshakeStream = field(init=False)
    hop_seconds: list[float] = field(default_factory=list)
    heard_before: int = 0
    """Bytes received before the current hop's handshake began (see ``_silence``)."""

    def __post_init__(self) -> None:
        self.stream = HandshakeStream(asyncio.get_running_loop())

    @property
    def target(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    async def run(
        self,
        ssl: _ssl.SSLContext | None,
        server_hostname: str,
        pin: Callable[[asyncio.Transport], None] | None,
    ) -> Tunnel:
        loop = asyncio.get_running_loop()
        first = self.route[0]
        self.stream.step = "the TCP connection to the proxy"
        started = time.perf_counter()
        sock = await _dial(loop, first.host, first.port)
        await loop.create_connection(lambda: self.stream, sock=sock)
        connected = time.perf_counter() - started  # part of hop 1's time
        for number, hop in enumerate(self.route, start=1):
            self.hop_number = number
            host, port = self._next_address(number)
            if resolves_locally(hop) and not is_ip_address(host):
                host = await self._resolve(hop, number, host, port)
            started = time.perf_counter()
            self.heard_before = self.stream.received
            await HANDSHAKES[hop.scheme](self.stream, hop, host, port)
            if self.stream.leftover():
                raise HandshakeError(
                    "protocol", f"sent {self.stream.leftover()} bytes more than its reply"
                )
            self.hop_seconds.append(
                time.perf_counter() - started + (connected if number == 1 else 0)
            )
        transport = self.stream.transport
        assert transport is not None
        if ssl is not None:
            self.stream.step = f"the TLS handshake with {self.target}"
            transport = await self._start_tls(transport, ssl, server_hostname)
            if pin is not None:
                pin(transport)
        return Tunnel(transport, self.stream, tuple(self.hop_seconds), sock)

    def _next_address(self, number: int) -> tuple[str, int]:
        if number < len(self.route):
            following = self.route[number]
            return following.host, following.port
        return self.host, self.port

    async def _resolve(self, hop: ProxyHop, number: int, host: str, port: int) -> str:
        # socks4 and socks5 without rdns send addresses: this machine looks the name up, in
        # the clear (the DNS table in docs/configuration.md says which names that is).
        self.lookup = host
        self.stream.step = f"the lookup of {host} on this machine"
        family = socket.AF_INET if hop.scheme == "socks4" else socket.AF_UNSPEC
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        self.lookup = None
        if not infos:  # pragma: no cover - getaddrinfo raises rather than answer nothing
            raise socket.gaierror(socket.EAI_NONAME, "no addresses")
        return str(infos[0][4][0])

    async def _start_tls(
        self, transport: asyncio.Transport, ssl: _ssl.SSLContext, server_hostname: str
    ) -> asyncio.Transport:
        loop = asyncio.get_running_loop()
        remaining = max(0.001, self.timeout)  # the outer deadline is what really bounds it
        tls = await loop.start_tls(
            transport,
            self.stream,
            ssl,
            server_hostname=server_hostname,
            ssl_handshake_timeout=remaining,
        )
        if tls is None:  # pragma: no cover - only when the transport was closed meanwhile
            raise ConnectionResetError("the connection closed before TLS started")
        self.stream.transport = tls
        return tls

    # --- reporting ---------------------------------------------------------------------

    def failure(self, error: BaseException) -> ProxyHopError:
        reason = reason_of(error)
        if self.stream.step == PROXY_TLS_STEP and reason in ("closed", "reset", "protocol"):
            reason = "tls"  # a proxy that hangs up on TLS does not speak it
        number = self.hop_number
        if reason == "dns" and self.lookup is not None and number < len(self.route):
            number += 1  # the name that did not resolve is the next hop's
        hop = self.route[number - 1]
        code = error.code if isinstance(error, HandshakeError) else None
        # A proxy's reply is quoted, and a proxy may echo the credentials it was sent.
        secrets = (form for hop in self.route for form in hop.secret_forms())
        detail = scrub_secrets(self._explain(reason, number, error), secrets)
        return ProxyHopError(number, len(self.route), hop.label(), reason, detail, code=code)

    def _explain(  # noqa: PLR0911 - one sentence per reason
        self, reason: Reason, number: int, error: BaseException
    ) -> str:
        step = self.stream.step
        hop = self.route[number - 1]
        said = _said(error)
        if reason == "refused":
            return "connection refused; is the proxy running and listening there?"
        if reason == "unreachable":
            return f"cannot connect: {said}"
        if reason == "dns":
            return self._explain_lookup(number, said)
        if reason == "timeout":
            waited = f"no answer within the {self.timeout:g} s connect timeout (waiting for {step})"
            return waited + self._silence(hop)
        if reason == "auth":
            has = "rejected the credentials" if hop.username is not None else "requires credentials"
            return f"the proxy {has} ({said})"
        if reason == "rejected":
            return f"the proxy refused to connect to {self._next_label(number)}: {said}"
        if reason == "request":
            return f"cannot make the request for {self._next_label(number)}: {said}"
        if reason == "tls" and step == PROXY_TLS_STEP:
            return _explain_proxy_tls(hop, error, self.stream.tls_reply)
        if reason == "tls":
            return f"{step} failed: {_tls_said(error)}"
        if reason == "closed":
            return self._explain_closed(number, step)
        if reason == "reset":
            return f"the connection was reset while waiting for {step}"
        return f"{said} (while waiting for {step})"

    def _silence(self, hop: ProxyHop) -> str:
        """What a hop that said nothing at all to botsession's first message may be: a SOCKS
        or TLS server answers that at once (if only to refuse it), while an HTTP proxy waits
        for the end of a request line that never comes."""
        stream = self.stream
        sent = FIRST_REPLIES.get(stream.step)
        heard = stream.received != self.heard_before or stream.tls_reply  # TLS reads its own
        if sent is None or hop.scheme == "http" or heard:
            return ""
        return (
            f"; it accepted the connection but said nothing to {sent}, as an HTTP proxy does "
            f"(it waits for a request line): is its scheme http:// rather than {hop.scheme}://?"
        )

    def _explain_lookup(self, number: int, said: str) -> str:
        if self.lookup is None:
            return f"cannot resolve its name {self.route[0].host} on this machine: {said}"
        if number <= len(self.route) and self.lookup == self.route[number - 1].host:
            before = self.route[number - 2]
            return (
                f"the lookup of hop {number}'s address {self.lookup} failed on this machine "
                f"(hop {number - 1} is {_local_dns_kind(before)}, so this machine resolves the "
                f"name it connects to): {said}"
            )
        return (
            f"the lookup of {self.lookup} failed on this machine (hop {number} is "
            f"{_local_dns_kind(self.route[number - 1])}, so this machine resolves the name it "
            f"connects to): {said}"
        )

    def _explain_closed(self, number: int, step: str) -> str:
        text = f"the proxy closed the connection while botsession waited for {step}"
        scheme = self.route[number - 1].scheme
        if "CONNECT reply" in step and self.stream.received == self.heard_before:
            # Not a byte of a status line: an HTTP proxy answers even a refusal with one.
            text += (
                f"; a SOCKS proxy does this with an HTTP request (is its scheme socks5:// "
                f"rather than {scheme}://?), and some HTTP proxies when they cannot reach or "
                f"resolve {self._next_label(number)}"
            )
        elif "connect reply" in step or "CONNECT reply" in step:
            text += (
                f"; some proxies (ssh -D among them) do this when they cannot reach or "
                f"resolve {self._next_label(number)}"
            )
        if number > 1 and "TLS handshake" not in step:
            text += f" (or hop {number - 1} lost its connection to it)"
        return text

    def _next_label(self, number: int) -> str:
        if number < len(self.route):
            return f"{self.route[number].address} (hop {number + 1})"
        return self.target


# OpenSSL's X509_V_ERR_… codes that say what is wrong with a certificate.
_UNTRUSTED = frozenset({2, 18, 19, 20, 21})  # no known issuer, self-signed, incomplete chain
_NOT_YET_VALID, _EXPIRED = 9, 10
_WRONG_HOST = frozenset({62, 64})  # a host name, an IP address the certificate does not list
# What OpenSSL says when the other side answered TLS with something else (say, HTTP).
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"})


def _explain_proxy_tls(hop: ProxyHop, error: BaseException, reply: bytes) -> str:
    """Why TLS with an https proxy failed, and what to do about it; ``reply`` is the start of
    what answered the ClientHello, when known."""
    if isinstance(error, HandshakeError):
        return str(error)
    if isinstance(error, _ssl.SSLCertVerificationError):
        return _explain_certificate(hop, error)
    if isinstance(error, _ssl.SSLError):
        if error.reason in _NOT_TLS:
            failed = f"the TLS handshake with the proxy failed ({_tls_said(error)})"
            guess = answered_like(hop.scheme, reply)
            if guess is not None:
                kind, fitting = guess
                return (
                    f"{failed}: it answered the ClientHello with {shown_reply(reply)}, like "
                    f"{kind}: is its scheme {fitting} rather than https://?"
                )
            return f"{failed}: it does not seem to speak TLS; a plain HTTP proxy is http://"
        return f"the TLS handshake with the proxy failed ({_tls_said(error)})"
    return (
        "the proxy closed the connection during the TLS handshake; is it a TLS (https://) "
        "proxy? a plain HTTP proxy is http://, a SOCKS proxy socks5://"
    )


def _explain_certificate(hop: ProxyHop, error: _ssl.SSLCertVerificationError) -> str:
    said = _said(error)
    code = error.verify_code
    if code in _UNTRUSTED:
        trusted = (
            f"by its ca_file {hop.ca_file}"
            if hop.ca_file is not None
            else "by certifi's CAs (the default)"
        )
        return (
            f"the proxy's TLS certificate is not trusted {trusted} ({said}); give the CA that "
            "issued it as ca_file for this hop (or verify: false, which is insecure)"
        )
    if code in _WRONG_HOST:
        return (
            f"the proxy's TLS certificate is not valid for {hop.host} ({said}); write the proxy "
            "with a host name its certificate lists"
        )
    if code == _EXPIRED:
        return (
            f"the proxy's TLS certificate has expired ({said}); it must be renewed on the proxy "
            "(or this machine's clock is wrong)"
        )
    if code == _NOT_YET_VALID:
        return f"the proxy's TLS certificate is not valid yet ({said}); check the clocks"
    return f"the proxy's TLS certificate was refused ({said})"


def _tls_said(error: BaseException) -> str:
    """OpenSSL's reason in words (``tlsv13 alert certificate required``), not its raw
    ``[SSL: …] … (_ssl.c:NNNN)`` text; a server that wants a client certificate says so."""
    if isinstance(error, _ssl.SSLCertVerificationError) or not isinstance(error, _ssl.SSLError):
        return _said(error)
    what = (error.reason or "").replace("_", " ").lower() or _said(error)
    if "CERTIFICATE_REQUIRED" in (error.reason or ""):
        # TLS 1.3 servers check the client's certificate after the client's handshake is done,
        # so this alert arrives with the first reply.
        return f"{what} (it wants a client certificate, which botsession does not send)"
    return what


def _local_dns_kind(hop: ProxyHop) -> str:
    return "socks4" if hop.scheme == "socks4" else f"{hop.scheme} with rdns off"


def _said(error: BaseException) -> str:
    """What an error says, without the errno noise, or its type when it says nothing."""
    if isinstance(error, _ssl.SSLCertVerificationError):
        return f"certificate verify failed: {error.verify_message}"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


__all__ = ["Tunnel", "open_tunnel", "resolves_locally"]
