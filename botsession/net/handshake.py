"""The proxy protocols, spoken over one byte stream: SOCKS4, SOCKS4a, SOCKS5, HTTP CONNECT, and
HTTP CONNECT inside TLS to the proxy (https).

Each reply is read to its exact length (HTTP: to the blank line) however the proxy splits it into
segments, and checked as soon as its first bytes arrive, so a reply of the wrong kind fails at
once instead of waiting for the timeout. The outcome never depends on how the reply is cut into
reads. Nothing may follow a reply: the next bytes belong to the next hop or to the server, which
only speak when spoken to.

No function here keeps a password in a local variable: the request that carries one is built
and sent in one expression, so a traceback recorded with its locals cannot show it.

An https hop first completes TLS with the proxy over the stream as it is (the bare connection
for hop 1, the tunnel through hops 1..k-1 for hop k, so TLS inside TLS where an earlier hop is
https); the handshake checks the certificate and the host name before it ends, so the CONNECT
request and its credentials are only ever sent to a proxy whose certificate was accepted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import ipaddress
import os
import re
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import certifi

from ..errors import ClosedError, HandshakeError, Reason

if TYPE_CHECKING:
    from pathlib import Path

    from ..config_schema import ProxyHop

MAX_HTTP_REPLY = 64 * 1024
"""A CONNECT reply head is a few hundred bytes; a proxy that sends more (interim responses
included) is not answering CONNECT."""
MAX_INTERIM = 16
"""How many interim (1xx) responses may come before the final CONNECT reply."""

SOCKS4_REPLIES = {
    0x5B: "request rejected or failed",
    0x5C: "request rejected: the proxy cannot reach the client's identd",
    0x5D: "request rejected: identd reports a different user id",
}
SOCKS5_REPLIES = {
    0x01: "general SOCKS server failure",
    0x02: "connection not allowed by ruleset",
    0x03: "network unreachable",
    0x04: "host unreachable",
    0x05: "connection refused",
    0x06: "TTL expired",
    0x07: "command not supported",
    0x08: "address type not supported",
}
# 0x5D: identd reports a different user id. 0x5C ("cannot reach identd") stays a plain
# rejection: identd is long gone and servers reuse that code for "could not connect".
SOCKS4_AUTH_CODES = frozenset({0x5D})
# 407 is the standard answer; tinyproxy answers a wrong password with 401.
HTTP_AUTH_CODES = frozenset({401, 407})


class HandshakeStream(asyncio.Protocol):
    """The connection while botsession speaks to the proxies on it: a buffer read exactly."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._buffer = bytearray()
        self._closed = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.step = "connecting"
        """What is being waited for, as a person would say it ("the SOCKS5 greeting reply")."""
        self.proxy_tls: list[ProxyTls] = []
        """The TLS sessions with https hops, in hop order."""
        self.tls_reply: bytes = b""
        """The first bytes of what answered a TLS handshake that failed or timed out, when
        they can be known: they tell a plain HTTP proxy (``HTTP/1.1 400``) from a SOCKS one,
        and a silent proxy from a slow one."""
        self.received = 0
        """Bytes received so far (inside TLS once it is set up): a proxy that said nothing to
        a request it should answer at once tells something about its kind."""
        self.lost: tuple[Exception | None] | None = None
        """Set (to the error, if any) when the connection is gone while this stream has it."""

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        self._buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self._closed = True
        self._wake()
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._error = exc
        self.lost = (exc,)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # reading and writing
    def send(self, data: bytes) -> None:
        """Write ``data``; never raises (a closed connection shows up at the next read)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def receive_exactly(
        self, size: int, check: Callable[[bytes], None] | None = None
    ) -> bytes:
        """The next ``size`` bytes; ``check`` sees what has arrived (up to 64 bytes, which may
        run past ``size``) each time more arrives, so a wrong reply fails at its first byte and
        its message can quote it."""
        while True:
            if check is not None and self._buffer:
                check(bytes(self._buffer[:64]))
            if len(self._buffer) >= size:
                break
            await self._more(size)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def receive_line(
        self, limit: int, check: Callable[[bytes], None], too_long: str
    ) -> bytes:
        """The next line, with its LF (and the CR before it, if any); ``check`` sees the line
        so far (up to 64 bytes) each time more arrives. A line longer than ``limit`` bytes
        fails with ``too_long``, a CR not followed by LF as soon as it is seen."""
        scanned = 0  # no LF and no bare CR before this offset
        while True:
            if self._buffer:
                check(bytes(self._buffer[:64]))
            found = self._buffer.find(b"\n", scanned)
            end = len(self._buffer) if found == -1 else found
            carriage = self._buffer.find(b"\r", scanned, end)
            if carriage != -1 and carriage + 1 < end:
                raise HandshakeError("protocol", "a bare CR in the reply (a CR not followed by LF)")
            if found != -1 and found < limit:
                line = bytes(self._buffer[: found + 1])
                del self._buffer[: found + 1]
                return line
            if len(self._buffer) >= limit:
                raise HandshakeError("protocol", too_long)
            scanned = end if carriage == -1 else carriage
            await self._more(None)

    async def _more(self, wanted: int | None) -> None:
        if self._closed:
            if self._error is not None:
                raise self._error
            have = len(self._buffer)
            got = f"after {have} of {wanted} bytes" if wanted else f"after {have} bytes"
            raise ClosedError(f"closed by the other side {got}" if have else "closed")
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def leftover(self) -> int:
        """How many bytes arrived beyond the replies read so far."""
        return len(self._buffer)

    def take_leftover(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> asyncio.Transport:
        """TLS over the connection as it is now (TLS inside TLS when it is already TLS);
        returns once the handshake, with the certificate check, is complete."""
        if self.transport is None:  # pragma: no cover - a handshake always follows a connection
            raise ConnectionResetError("not connected")
        transport = self.transport
        given = _remember_protocols(transport)
        try:
            tls = await self._loop.start_tls(
                transport,
                self,
                context,
                server_hostname=server_hostname,
            )  # bounded by the route's deadline
        except BaseException:  # a refusal, a timeout: what answered tells what it is
            self.tls_reply = _first_bytes_read(given)
            raise
        finally:
            _forget_protocols(transport)
        if tls is None:  # pragma: no cover - only when the transport was closed meanwhile
            raise ConnectionResetError("the connection closed before TLS started")
        _carries_tls(tls)
        self.transport = tls
        return tls


def _remember_protocols(transport: asyncio.Transport) -> list[asyncio.BaseProtocol]:
    """The protocols that ``transport`` is given until ``_forget_protocols`` (``start_tls``
    gives it its TLS protocol, which the transport forgets when the handshake fails)."""
    given: list[asyncio.BaseProtocol] = []
    set_protocol = transport.set_protocol

    def remembering(protocol: asyncio.BaseProtocol) -> None:
        given.append(protocol)
        set_protocol(protocol)

    with contextlib.suppress(AttributeError):  # a transport with __slots__ (not asyncio's)
        transport.set_protocol = remembering  # type: ignore[method-assign]
    return given


def _forget_protocols(transport: asyncio.Transport) -> None:
    with contextlib.suppress(AttributeError):
        del transport.set_protocol  # the class's own again


def _first_bytes_read(protocols: list[asyncio.BaseProtocol]) -> bytes:
    """The start of what asyncio's TLS protocol was last given to read (it reads into a
    buffer of its own, which no one else sees): what answered the ClientHello. Empty when that
    cannot be known (another event loop, another Python)."""
    for protocol in protocols:
        buffer = getattr(protocol, "_ssl_buffer", None)
        if isinstance(buffer, bytearray):
            return bytes(buffer[:24]).rstrip(b"\x00")
    return b""


def _carries_tls(transport: asyncio.Transport) -> None:
    """Let an asyncio TLS transport carry another TLS connection on Python 3.11 and 3.12.

    There, when the TLS inside fails (a certificate refused), asyncio calls the outer
    transport's ``_force_close(exc)``, which calls ``SSLProtocol._abort(exc)`` that takes no
    argument: a ``TypeError`` replaces the real error (fixed in CPython 3.13, where ``_abort``
    takes the exception). The outer connection is aborted as 3.13 does instead.
    """
    protocol: Any = getattr(transport, "_ssl_protocol", None)
    abort = getattr(protocol, "_abort", None)
    if abort is None or abort.__code__.co_argcount != 1:
        return  # not asyncio's TLS transport, or a Python that takes the exception

    def force_close(_exc: BaseException | None) -> None:
        transport._closed = True  # type: ignore[attr-defined]
        abort()

    transport._force_close = force_close  # type: ignore[attr-defined]


Handshake = Callable[["HandshakeStream", "ProxyHop", str, int], Awaitable[None]]


# --- SOCKS4 and SOCKS4a ------------------------------------------------------------------


async def socks4(stream: HandshakeStream, hop: ProxyHop, host: str, port: int) -> None:
    """SOCKS4 CONNECT to an IPv4 address, or SOCKS4a to a name (when ``hop.rdns``)."""
    user = (hop.username or "").encode("ascii")
    try:
        address = ipaddress.IPv4Address(host).packed
        name = b""
    except ValueError:
        if not hop.rdns:  # names were resolved (to IPv4) before; this is an IPv6 address
            raise HandshakeError(
                "request", f"socks4 reaches IPv4 addresses only, not {host}"
            ) from None
        address, name = b"\x00\x00\x00\x01", _host_bytes(host) + b"\x00"
    stream.step = f"the {hop.scheme.upper()} reply"
    stream.send(b"\x04\x01" + struct.pack(">H", port) + address + user + b"\x00" + name)
    _version, status = await stream.receive_exactly(2, _expect_first(0x00, hop))
    if status != 0x5A:
        text = SOCKS4_REPLIES.get(status)
        if text is None:
            # 0x5A-0x5D are the only codes; a SOCKS5 proxy refuses a SOCKS4 request with bytes
            # of its own (or by closing).
            raise HandshakeError(
                "protocol",
                f"unknown {hop.scheme} reply code {status:#04x}: it did not answer like a SOCKS4 "
                f"proxy; is its scheme socks5:// rather than {hop.scheme}://?",
            )
        reason: Reason = "auth" if status in SOCKS4_AUTH_CODES else "rejected"
        raise HandshakeError(reason, f"{text} ({status:#04x})", code=status)
    await stream.receive_exactly(6)


# --- SOCKS5 ------------------------------------------------------------------------------


async def socks5(stream: HandshakeStream, hop: ProxyHop, host: str, port: int) -> None:
    """SOCKS5 CONNECT (RFC 1928), with username/password authentication (RFC 1929)."""
    methods = b"\x00\x02" if hop.username is not None else b"\x00"
    stream.step = "the SOCKS5 greeting reply"
    stream.send(b"\x05" + bytes([len(methods)]) + methods)
    _version, method = await stream.receive_exactly(2, _expect_first(0x05, hop))
    if method == 0xFF:
        needs = (
            "" if hop.username is not None else "; it probably requires a user name and password"
        )
        raise HandshakeError("auth", f"accepts none of the offered authentication methods{needs}")
    if method == 0x02:
        if hop.username is None:
            raise HandshakeError("auth", "requires a user name and password")
        stream.step = "the SOCKS5 authentication reply"
        stream.send(_rfc1929_request(hop))
        # RFC 1929 says version 1; a few servers answer with 5.
        _version, status = await stream.receive_exactly(2, _expect_first((0x01, 0x05), hop))
        if status != 0x00:
            raise HandshakeError(
                "auth", f"rejected the credentials (status {status:#04x})", code=status
            )
    elif method != 0x00:
        raise HandshakeError("protocol", f"chose authentication method {method:#04x}, not offered")
    stream.step = "the SOCKS5 connect reply"
    stream.send(b"\x05\x01\x00" + _socks5_address(host) + struct.pack(">H", port))
    _version, status = await stream.receive_exactly(2, _expect_first(0x05, hop))
    if status != 0x00:
        text = SOCKS5_REPLIES.get(status, f"unknown reply code {status:#04x}")
        raise HandshakeError("rejected", f"{text} ({status:#04x})", code=status)
    _reserved, kind = await stream.receive_exactly(2)
    sizes = {0x01: 4, 0x04: 16}
    if kind == 0x03:
        (size,) = await stream.receive_exactly(1)
    elif kind in sizes:
        size = sizes[kind]
    else:
        raise HandshakeError("protocol", f"the connect reply has an unknown address type {kind}")
    await stream.receive_exactly(size + 2)


def _rfc1929_request(hop: ProxyHop) -> bytes:
    if not all(0 < len(_utf8(text)) < 256 for text in (hop.username, hop.secret())):
        raise HandshakeError("request", "a socks5 user name and password are 1 to 255 bytes each")
    return b"\x01" + _with_length(_utf8(hop.username)) + _with_length(_utf8(hop.secret()))


def _utf8(text: str | None) -> bytes:
    # surrogatepass cannot fail: an encoding error would carry the password in its arguments.
    return (text or "").encode(errors="surrogatepass")  # UTF-8


def _with_length(data: bytes) -> bytes:
    return bytes([len(data)]) + data


def _socks5_address(host: str) -> bytes:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = _host_bytes(host)
        return b"\x03" + bytes([len(name)]) + name
    return (b"\x01" if address.version == 4 else b"\x04") + address.packed


def _host_bytes(host: str) -> bytes:
    """A host name as sent on the wire (IDNA); names are checked at load, this is for targets."""
    try:
        name = host.encode("ascii") if host.isascii() else _idna(host)
    except UnicodeError:
        raise HandshakeError("request", f"the host name {host!r} cannot be encoded") from None
    if not 0 < len(name) < 256:
        raise HandshakeError("request", f"the host name is {len(name)} bytes; SOCKS allows 255")
    return name


def _idna(host: str) -> bytes:
    import idna

    return idna.encode(host, uts46=True)  # its IDNAError is a UnicodeError


# --- HTTP CONNECT ------------------------------------------------------------------------


async def http_connect(stream: HandshakeStream, hop: ProxyHop, host: str, port: int) -> None:
    """An HTTP/1.1 CONNECT tunnel; credentials as Basic auth in UTF-8 (RFC 7617).

    The reply is read line by line, a line ending in CRLF or a bare LF (RFC 9112 §2.2). Interim
    (1xx) responses are skipped (RFC 9110 §15.2), at most ``MAX_INTERIM`` of them; the whole
    head, interim responses included, is at most ``MAX_HTTP_REPLY`` bytes. A 2xx reply is the
    tunnel, which starts right after its blank line: its Content-Length or Transfer-Encoding is
    ignored (RFC 9110 §9.3.6). Any other status fails as soon as its status line is read.
    """
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    stream.step = "the HTTP CONNECT reply"
    stream.send(_connect_request(authority, hop))
    head = _HttpHead(stream, hop.scheme)
    interim = 0
    while True:  # bounded: at most MAX_INTERIM interim responses
        status, text = await head.status_line()
        if status == 101:
            raise HandshakeError("protocol", f"answered {_quoted(text)}: not a tunnel", code=status)
        if not 100 <= status < 300:
            reason: Reason = "auth" if status in HTTP_AUTH_CODES else "rejected"
            raise HandshakeError(reason, _quoted(text), code=status)
        if status < 200:
            interim += 1
            if interim > MAX_INTERIM:
                raise HandshakeError(
                    "protocol", f"sent more than {MAX_INTERIM} interim (1xx) responses"
                )
        await head.fields()
        if status >= 200:
            return


# HTTP-version SP status-code [SP reason-phrase] (RFC 9112 §4); the version is checked apart,
# to say when it is not HTTP/1.x. Not every proxy sends the SP before an empty reason phrase.
_STATUS_LINE = re.compile(rb"HTTP/(\d)(?:\.\d)? (\d{3})(?: (.*))?", re.DOTALL)
_HTTP_1 = re.compile(rb"HTTP/1\.\d ")
# field-name ":" field-value (RFC 9110 §5.1, §5.5); a NUL is never allowed in a value.
_FIELD_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00]*")
_FOLDED_LINE = re.compile(rb"[ \t][^\x00]*")


class _HttpHead:
    """The lines of the reply to CONNECT, each checked, within one budget of bytes."""

    def __init__(self, stream: HandshakeStream, scheme: str) -> None:
        self._stream = stream
        self._expect_http = _expect_http(scheme)
        self._left = MAX_HTTP_REPLY

    async def _line(self, check: Callable[[bytes], None]) -> bytes:
        too_long = f"the reply head is longer than {MAX_HTTP_REPLY} bytes"
        line = await self._stream.receive_line(self._left, check, too_long)
        self._left -= len(line)
        return line.removesuffix(b"\n").removesuffix(b"\r")

    async def status_line(self) -> tuple[int, bytes]:
        """The status code and the text after the version (``403 Forbidden``)."""
        line = await self._line(self._expect_http)
        match = _STATUS_LINE.fullmatch(line)
        if match is None:
            raise HandshakeError("protocol", f"malformed status line {_quoted(line)}")
        if not _HTTP_1.match(line):
            raise HandshakeError("protocol", f"the status line {_quoted(line)} is not HTTP/1.x")
        # Codes outside 100-599 are invalid; a client treats them as 5xx (RFC 9110 §15).
        return int(match[2]), line[len(b"HTTP/1.1 ") :]

    async def fields(self) -> None:
        """Read the header fields up to the blank line; their values do not matter here."""
        folds = False  # a folded line (obs-fold) continues a field, never the status line
        while line := await self._line(_anything):  # bounded by the budget of bytes
            pattern = _FOLDED_LINE if folds and line[:1] in b" \t" else _FIELD_LINE
            if not pattern.fullmatch(line):
                raise HandshakeError("protocol", f"malformed header line {_quoted(line)}")
            folds = True


def _anything(_data: bytes) -> None:
    """No check on a header line until it is complete."""


def _connect_request(authority: str, hop: ProxyHop) -> bytes:
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if hop.username is not None:
        credentials = base64.b64encode(_utf8(f"{hop.username}:{hop.secret() or ''}")).decode()
        lines.append(f"Proxy-Authorization: Basic {credentials}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


# --- HTTP CONNECT inside TLS (https) --------------------------------------------------------

PROXY_TLS_STEP = "the TLS handshake with the proxy"
"""``HandshakeStream.step`` while TLS with an https hop is being set up."""
FIRST_REPLIES = {
    "the SOCKS5 greeting reply": "the SOCKS5 greeting",
    "the SOCKS4 reply": "the SOCKS4 request",
    "the SOCKS4A reply": "the SOCKS4A request",
    PROXY_TLS_STEP: "the TLS ClientHello",
}
"""The steps that wait for a hop's first reply, and what botsession sent it: a proxy of the
protocol answers that at once, while an HTTP proxy waits, silent, for a request line."""


async def https_connect(stream: HandshakeStream, hop: ProxyHop, host: str, port: int) -> None:
    """TLS to the proxy (SNI and certificate checked against its host name), then CONNECT."""
    stream.step = PROXY_TLS_STEP
    try:
        context = proxy_tls_context(hop.ca_file, verify=hop.verify)
    except OSError as error:  # ssl.SSLError too: the file changed since it was checked at load
        said = getattr(error, "reason", None) or error.strerror or type(error).__name__
        raise HandshakeError("tls", f"cannot load the ca_file {hop.ca_file} ({said})") from None
    tls = await stream.start_tls(context, hop.host)
    stream.proxy_tls.append(ProxyTls.of(tls, hop.host, verified=hop.verify))
    await http_connect(stream, hop, host, port)


def proxy_tls_context(ca_file: Path | None, *, verify: bool) -> ssl.SSLContext:
    """The TLS client context for an https proxy: ``ca_file``'s CAs (certifi's by default)."""
    if not verify:
        return _unverified_context()
    cafile = str(ca_file) if ca_file is not None else certifi.where()
    stat = os.stat(cafile)
    return _verified_context(cafile, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _verified_context(cafile: str, _mtime_ns: int, _size: int) -> ssl.SSLContext:
    # Loading a CA bundle takes milliseconds; a context is safe to share while the file is
    # unchanged (its time and size are part of the key).
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols(["http/1.1"])
    return context


@functools.lru_cache(maxsize=1)
def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


@dataclass(frozen=True)
class ProxyTls:
    """What the TLS session with an https proxy was: for ``botsession probe``."""

    server_hostname: str
    version: str
    """``TLSv1.3``, ``TLSv1.2``…"""
    verified: bool
    """Whether the certificate and host name were checked (``verify``)."""
    subject: str | None
    """``CN=proxy.example, O=Example``; None when the certificate could not be read."""
    issuer: str | None
    not_after: datetime | None
    """When the certificate expires (UTC)."""

    @classmethod
    def of(
        cls, transport: asyncio.BaseTransport, server_hostname: str, *, verified: bool
    ) -> ProxyTls:
        ssl_object = transport.get_extra_info("ssl_object")
        version = (ssl_object.version() if ssl_object is not None else None) or "TLS"
        cert: dict[str, Any] = (ssl_object.getpeercert() if ssl_object is not None else None) or {}
        if not cert and ssl_object is not None:  # not verified: the certificate was not decoded
            cert = _decode_certificate(ssl_object.getpeercert(binary_form=True))
        not_after = cert.get("notAfter")
        return cls(
            server_hostname=server_hostname,
            version=version,
            verified=verified,
            subject=_name(cert.get("subject")),
            issuer=_name(cert.get("issuer")),
            not_after=(
                datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)
                if isinstance(not_after, str)
                else not_after
            ),
        )


def _name(rdns: Any) -> str | None:
    """An X.509 name as ``getpeercert`` gives it, as ``CN=…, O=…`` (most specific first)."""
    if isinstance(rdns, str) or rdns is None:
        return rdns
    short = {  # RFC 4514's names, as cryptography gives them for an unchecked certificate
        "commonName": "CN",
        "organizationName": "O",
        "organizationalUnitName": "OU",
        "countryName": "C",
        "stateOrProvinceName": "ST",
        "localityName": "L",
        "streetAddress": "STREET",
        "domainComponent": "DC",
        "userId": "UID",
    }
    parts = [f"{short.get(key, key)}={value}" for rdn in reversed(rdns) for key, value in rdn]
    return ", ".join(parts) or None


def _decode_certificate(der: bytes | None) -> dict[str, Any]:
    """Subject, issuer and expiry of a DER certificate, when ``cryptography`` is installed."""
    if not der:
        return {}
    try:
        from cryptography import x509
    except ImportError:  # pragma: no cover - cryptography comes with the test extra
        return {}
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:  # pragma: no cover - the TLS library accepted it
        return {}

    def name(value: x509.Name) -> str:
        return ", ".join(
            f"{part.rfc4514_attribute_name}={part.value!s}" for part in reversed(list(value))
        )

    return {
        "subject": name(cert.subject),
        "issuer": name(cert.issuer),
        "notAfter": cert.not_valid_after_utc,
    }


# --- recognising the wrong kind of server ------------------------------------------------


def _expect_first(expected: int | tuple[int, ...], hop: ProxyHop) -> Callable[[bytes], None]:
    allowed = (expected,) if isinstance(expected, int) else expected

    def check(data: bytes) -> None:
        if data and data[0] not in allowed:
            raise HandshakeError("protocol", _not_a(hop.scheme, hop.scheme, data))

    return check


def _expect_http(scheme: str) -> Callable[[bytes], None]:
    def check(data: bytes) -> None:
        prefix = b"HTTP/"
        if data[: len(prefix)] != prefix[: len(data)]:
            # "HTTP" for an https hop too: inside TLS, the reply to CONNECT is HTTP.
            raise HandshakeError("protocol", _not_a("http", scheme, data))

    return check


def _not_a(protocol: str, scheme: str, data: bytes) -> str:
    """What the reply looks like instead, and the scheme that would fit it: servers of one
    kind are often written with the scheme of another."""
    said = f"the reply is not {protocol.upper()}: it starts with {shown_reply(data[:24])}"
    if data.startswith(b"SSH-"):
        return f"{said}; it looks like an SSH server (ssh -D makes a SOCKS proxy on your side)"
    guess = answered_like(scheme, data)
    if guess is None:
        return said
    kind, fitting = guess
    return f"{said}; it answered like {kind}: is its scheme {fitting} rather than {scheme}://?"


def answered_like(scheme: str, data: bytes) -> tuple[str, str] | None:  # noqa: PLR0911
    """The kind of server whose first bytes ``data`` are, and its scheme; None if unknown."""
    first = data[:1]
    if data.startswith(b"HTTP/") and scheme != "http":
        return "an HTTP proxy", "http://"
    if first in (b"\x15", b"\x16") and scheme != "https":  # a TLS alert or handshake record
        return "a TLS server", "https://"
    if first == b"\x05" and scheme != "socks5":  # 5 is the version of every SOCKS5 reply
        return "a SOCKS5 proxy", "socks5://"
    if first == b"\x00" and scheme in ("http", "https"):
        if 0x5A <= (data[1:2] or b"\x00")[0] <= 0x5D:  # a SOCKS4 reply: version 0, status
            return "a SOCKS4 proxy", "socks4://"
        return "a SOCKS proxy", "socks5:// (or socks4://)"
    if first == b"\x00" and scheme == "socks5":  # 0 is the version of a SOCKS4 reply
        return "a SOCKS4 proxy", "socks4://"
    return None


def _quoted(raw: bytes, limit: int = 80) -> str:
    """Untrusted text (a reason phrase, a header line) quoted for a message: UTF-8 where it
    decodes, ``\\xNN`` where it does not, every control or invisible character escaped."""
    text = raw.decode(errors="backslashreplace")  # UTF-8; a line of the head: at most 64 KiB
    shown = "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text[:limit])
    return f"'{shown}{'…' if len(text) > limit else ''}'"


def shown_reply(data: bytes) -> str:
    """The first bytes of a reply: its first line quoted when that is ASCII text, else the
    first 16 bytes in hex."""
    line = data.partition(b"\r\n")[0]
    if line and all(32 <= byte < 127 for byte in line):
        return repr(line.decode())
    return "bytes " + data[:16].hex(" ") + (" …" if len(data) > 16 else "")


HANDSHAKES: dict[str, Handshake] = {
    "http": http_connect,
    "https": https_connect,
    "socks4": socks4,
    "socks4a": socks4,
    "socks5": socks5,
}
