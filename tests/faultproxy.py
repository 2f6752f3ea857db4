"""A proxy on loopback that works correctly except at one handshake step, where it injects a fault.

It speaks SOCKS4 (and SOCKS4a's ``0.0.0.x`` + host-name form), SOCKS5 (RFC 1928, with optional
RFC 1929 username/password) and HTTP CONNECT. ``step`` picks the answer to spoil and ``fault``
how to spoil it; both are plain attributes, so a test may change them while the proxy runs.

Faults, applied after the client's message for that step was read:

- ``pass``: answer correctly.
- ``close``: close cleanly (FIN) without answering.
- ``reset``: abort with an RST.
- ``stall``: never answer; keep the connection open until the client goes away.
- ``garbage``: answer with bytes invalid for the step (an HTTP error to a SOCKS client, an SSH
  banner to an HTTP client) and keep the connection open.
- ``truncated``: send the first half of the correct answer, then close (FIN).
- ``split``: send the correct answer in several small TCP segments, then work normally.

``reply`` (a ``Scripted``) replaces the answer at ``step`` with any bytes, sent in one write or
in pieces of a given size: a reply code, a bound address, an HTTP head that a real proxy might
send. The proxy then goes on as those bytes say: after a scripted ``reply`` it connects to the
destination and relays (the client decides whether it has a tunnel), after a greeting or an
auth answer it carries on as the method or status chosen there, and it waits for the client to
hang up after one it cannot carry on from.

After a successful handshake it connects to the destination (loopback only) and relays both
ways, passing on a FIN as a half-close and an RST as an RST.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import itertools
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from .servers import BackgroundLoop, Listener, stream_listener
from .support import LOOPBACK, proxy_url, reset
from .tls_relay import TlsRelay

Protocol = Literal["socks4", "socks4a", "socks5", "http"]
Step = Literal["greeting", "auth", "reply"]
Fault = Literal["pass", "close", "reset", "stall", "garbage", "truncated", "split"]

STEPS: dict[Protocol, tuple[Step, ...]] = {
    "socks4": ("reply",),
    "socks4a": ("reply",),
    "socks5": ("greeting", "auth", "reply"),
    "http": ("reply",),
}
"""The steps of each protocol where a fault can be injected."""
FAULTS: tuple[Fault, ...] = get_args(Fault)

SOCKS_GARBAGE = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"
"""What an HTTP proxy answers to a SOCKS client (an HTTP proxy at a SOCKS URL)."""
HTTP_GARBAGE = b"SSH-2.0-OpenSSH_9.2p1\r\n"
"""What an SSH server says first (an SSH port at an HTTP proxy URL)."""
HTTP_ESTABLISHED = (
    b"HTTP/1.1 200 Connection established\r\n"
    b"Proxy-Agent: faultproxy\r\n"
    b"X-Padding: " + b"x" * 200 + b"\r\n"
    b"\r\n"
)
"""The CONNECT answer: several header lines, so a client must read up to the blank line."""

SPLIT_PAUSE = 0.015
"""Seconds between the segments of a ``split`` answer."""
SCRIPT_PAUSE = 0.002
"""Seconds between the pieces of a ``Scripted`` reply (they may be many one-byte pieces)."""
HANGUP_LIMIT = 60.0
"""``stall`` and ``garbage`` wait at most this long for the client to go away."""
RELAY_LIMIT = 300.0
"""A relayed connection is cut after this long, whatever happens."""
CONNECT_LIMIT = 5.0
"""Seconds to connect to the destination."""
HEAD_LIMIT = 16 * 1024
"""Largest CONNECT request head (and SOCKS4 user id or host name) read."""


class _Finished(Exception):
    """The connection is over (answered with a failure, or the fault was injected)."""


@dataclass(frozen=True)
class Scripted:
    """Bytes a ``FaultProxy`` sends at its ``step`` instead of the correct answer."""

    data: bytes
    segment: int | None = None
    """Send ``data`` in pieces of this many bytes, each its own write; None: in one write."""

    def pieces(self) -> list[bytes]:
        size = self.segment or max(1, len(self.data))
        return [self.data[start : start + size] for start in range(0, len(self.data), size)]


@dataclass
class FaultProxy:
    """A proxy that is correct except at ``step``, where it injects ``fault``."""

    background: BackgroundLoop
    protocol: Protocol
    step: Step = "reply"
    fault: Fault = "pass"
    username: str | None = None
    password: str | None = None
    reply: Scripted | None = None
    """What to send at ``step`` instead of the correct answer (``fault`` is then ``pass``)."""
    port: int = 0
    accepted: int = 0
    """TCP connections accepted."""
    destinations: list[tuple[str, int]] = field(default_factory=list)
    """Destinations (as the client named them) connected to and relayed after a handshake."""
    requested: list[tuple[str, int]] = field(default_factory=list)
    """Destinations (as the client named them) asked for, whether or not they were reached."""
    errors: list[BaseException] = field(default_factory=list)
    """Unexpected exceptions in connection handlers (a bug in the proxy, not in the client)."""
    _listener: Listener | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)
    _transports: set[asyncio.WriteTransport] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.protocol not in STEPS:
            raise ValueError(f"unknown protocol {self.protocol!r}")
        if self.step not in STEPS[self.protocol]:
            raise ValueError(f"{self.protocol} has no step {self.step!r}")
        if self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}")
        if self.step == "auth" and (self.username is None or self.password is None):
            raise ValueError("a fault at the auth step needs a username and a password")
        if self.reply is not None and self.fault != "pass":
            raise ValueError("a scripted reply is sent as scripted: the fault must be 'pass'")

    def url(self, *, credentials: bool = True) -> str:
        """``protocol://user:pass@127.0.0.1:port`` (credentials percent-encoded)."""
        return proxy_url(
            self.protocol,
            LOOPBACK,
            self.port,
            self.username,
            self.password,
            credentials=credentials,
        )

    def start(self) -> FaultProxy:
        async def start() -> int:
            self._listener = await stream_listener(self._handle, self.port)
            return self._listener.port

        self.port = self.background.run(start())
        return self

    def stop(self) -> None:
        """Close the listening socket and every open connection."""

        async def stop() -> None:
            if self._listener is not None:
                await self._listener.close()
            for transport in list(self._transports):
                transport.abort()
            handlers = list(self._handlers)
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

        self.background.run(stop())

    def reset_connections(self, *, gently: bool = False) -> int:
        """Reset (RST; close with a FIN when ``gently``) every connection open now (to clients
        and destinations), as a proxy that drops its tunnels does; returns how many, once the
        resets (or FINs) are sent."""

        async def reset_all() -> int:
            open_now = list(self._transports)
            for transport in open_now:
                if gently:
                    transport.close()
                else:
                    reset(transport)
            return len(open_now)

        return self.background.run(reset_all())

    # --- per connection ----------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._transports.add(writer.transport)
        _no_delay(writer)
        try:
            handshake = {
                "socks4": self._socks4,
                "socks4a": self._socks4,
                "socks5": self._socks5,
                "http": self._http,
            }[self.protocol]
            upstream = await handshake(reader, writer)
            await self._relay(reader, writer, *upstream)
        except (
            TimeoutError,
            _Finished,
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass  # the connection ended, as connections do
        except asyncio.CancelledError:
            # stop() cancels handlers; on Python 3.11 the stream's done callback would call
            # task.exception() on a cancelled task and log an error, so end quietly instead.
            pass
        except Exception as error:  # a bug in the proxy: keep it for the tests to see
            self.errors.append(error)
        finally:
            writer.close()
            self._transports.discard(writer.transport)
            self._handlers.discard(task)

    def _fault_at(self, step: Step) -> Fault:
        return self.fault if self.step == step else "pass"

    def _scripted_at(self, step: Step) -> Scripted | None:
        return self.reply if self.step == step else None

    async def _say(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bytes, step: Step
    ) -> bytes:
        """Send the answer of ``step``: the scripted one if any, else ``answer`` as the fault
        says. Returns what was sent; raises ``_Finished`` if the connection is over."""
        scripted = self._scripted_at(step)
        if scripted is None:
            await self._answer(reader, writer, answer, self._fault_at(step))
            return answer
        for number, piece in enumerate(scripted.pieces()):
            if number:
                await asyncio.sleep(SCRIPT_PAUSE)
            writer.write(piece)
            await writer.drain()
        return scripted.data

    async def _answer(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        answer: bytes,
        fault: Fault,
    ) -> None:
        """Send ``answer`` as ``fault`` says; raises ``_Finished`` if the connection is over."""
        if fault == "pass":
            writer.write(answer)
            await writer.drain()
            return
        if fault == "split":
            for number, segment in enumerate(_segments(answer)):
                if number:
                    await asyncio.sleep(SPLIT_PAUSE)
                writer.write(segment)
                await writer.drain()
            return
        if fault == "reset":
            reset(writer.transport)
        elif fault == "truncated":
            writer.write(answer[: max(1, len(answer) // 2)])
            await writer.drain()
        elif fault == "garbage":
            writer.write(HTTP_GARBAGE if self.protocol == "http" else SOCKS_GARBAGE)
            await writer.drain()
            await _until_hangup(reader)
        elif fault == "stall":
            await _until_hangup(reader)
        raise _Finished  # "close" and the rest: the handler closes (FIN) unless reset

    async def _refuse(self, writer: asyncio.StreamWriter, answer: bytes) -> _Finished:
        writer.write(answer)
        await writer.drain()
        return _Finished()

    async def _connect(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        target: tuple[str, int],
        success: Callable[[tuple[str, int] | None], bytes],
        failure: Callable[[Literal["forbidden", "refused"]], bytes],
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to ``target`` and answer the client: the "reply" step of every protocol."""
        self.requested.append(target)
        fault = self._fault_at("reply")
        if fault not in ("pass", "split"):
            await self._answer(reader, writer, success(None), fault)  # raises _Finished
        host, port = target
        address = await _loopback_address(host)
        if address is None:
            raise await self._refuse(writer, failure("forbidden"))
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(address, port), CONNECT_LIMIT
            )
        except (TimeoutError, OSError):
            raise await self._refuse(writer, failure("refused")) from None
        self._transports.add(up_writer.transport)
        try:
            await self._say(reader, writer, success(up_writer.get_extra_info("sockname")), "reply")
        except BaseException:
            _close(up_writer, self._transports)
            raise
        self.destinations.append((host, port))
        return up_reader, up_writer

    async def _relay(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        """Copy both ways; a FIN becomes a half-close, an RST on either side resets both."""
        _no_delay(up_writer)
        pumps = [
            asyncio.ensure_future(_pump(reader, up_writer)),
            asyncio.ensure_future(_pump(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pumps, timeout=RELAY_LIMIT, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for pump in pumps:
                pump.cancel()
            outcomes = await asyncio.gather(*pumps, return_exceptions=True)
            if any(isinstance(outcome, ConnectionError) for outcome in outcomes):
                reset(writer.transport)
                reset(up_writer.transport)
            _close(up_writer, self._transports)

    # --- SOCKS4 / SOCKS4a ----------------------------------------------------------------------

    async def _socks4(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        header = await reader.readexactly(8)
        version, command = header[0], header[1]
        port = int.from_bytes(header[2:4], "big")
        if version != 4:
            raise _Finished
        user_id = await _read_string(reader)
        if header[4:7] == b"\0\0\0" and header[7] != 0:  # SOCKS4a: the host name follows
            host = await _read_string(reader)
        else:
            host = socket.inet_ntoa(header[4:8])
        rejected = b"\x00\x5b" + bytes(6)
        if command != 1:
            raise await self._refuse(writer, rejected)
        if self.username is not None and user_id != self.username:
            raise await self._refuse(writer, b"\x00\x5d" + bytes(6))
        return await self._connect(
            reader,
            writer,
            (host, port),
            lambda _bound: b"\x00\x5a" + bytes(6),
            lambda _why: rejected,
        )

    # --- SOCKS5 ----------------------------------------------------------------------------

    async def _socks5(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        version, count = await reader.readexactly(2)
        if version != 5:
            raise _Finished
        methods = await reader.readexactly(count)
        demand_auth = self.username is not None or self.step == "auth"
        wanted = 0x02 if demand_auth else 0x00
        method = wanted if wanted in methods else 0xFF
        sent = await self._say(reader, writer, bytes([5, method]), "greeting")
        if sent != bytes([5, method]):  # scripted: carry on as the method it names
            method = sent[1] if sent in (b"\x05\x00", b"\x05\x02") else 0xFF
            if method == 0xFF:
                await _until_hangup(reader)
        if method == 0xFF:
            raise _Finished
        if method == 0x02:
            await self._socks5_auth(reader, writer)
        version, command, _reserved, kind = await reader.readexactly(4)
        if version != 5:
            raise _Finished
        if kind == 1:
            host = socket.inet_ntoa(await reader.readexactly(4))
        elif kind == 3:
            length = (await reader.readexactly(1))[0]
            host = (await reader.readexactly(length)).decode("utf-8", "replace")
        elif kind == 4:
            host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
        else:
            raise await self._refuse(writer, _socks5_reply(0x08))
        port = int.from_bytes(await reader.readexactly(2), "big")
        if command != 1:
            raise await self._refuse(writer, _socks5_reply(0x07))
        return await self._connect(
            reader,
            writer,
            (host, port),
            lambda bound: _socks5_reply(0x00, bound),
            lambda why: _socks5_reply(0x02 if why == "forbidden" else 0x05),
        )

    async def _socks5_auth(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        version, length = await reader.readexactly(2)
        username = await reader.readexactly(length)
        password = await reader.readexactly((await reader.readexactly(1))[0])
        accepted = (
            version == 1
            and username == (self.username or "").encode()
            and password == (self.password or "").encode()
        )
        answer = bytes([1, 0x00 if accepted else 0x01])
        sent = await self._say(reader, writer, answer, "auth")
        if sent != answer:  # scripted: carry on if it says the credentials were accepted
            accepted = sent in (b"\x01\x00", b"\x05\x00")
            if not accepted:
                await _until_hangup(reader)
        if not accepted:
            raise _Finished

    # --- HTTP CONNECT --------------------------------------------------------------------------

    async def _http(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        head = await _read_until(reader, b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = request_line.split()
        if len(parts) != 3 or parts[0] != "CONNECT":
            raise await self._refuse(writer, _http_reply(405, "Method Not Allowed"))
        host, _, port_text = parts[1].rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise await self._refuse(writer, _http_reply(400, "Bad Request"))
        if self.username is not None:
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in header_lines)
            }
            secret = f"{self.username}:{self.password or ''}".encode()
            if headers.get("proxy-authorization") != "Basic " + base64.b64encode(secret).decode():
                raise await self._refuse(
                    writer,
                    _http_reply(
                        407,
                        "Proxy Authentication Required",
                        b'Proxy-Authenticate: Basic realm="faultproxy"\r\n',
                    ),
                )
        return await self._connect(
            reader,
            writer,
            (host, int(port_text)),
            lambda _bound: HTTP_ESTABLISHED,
            lambda why: (
                _http_reply(403, "Forbidden")
                if why == "forbidden"
                else _http_reply(502, "Bad Gateway")
            ),
        )


# --- helpers ---------------------------------------------------------------------------------


def _segments(answer: bytes) -> list[bytes]:
    """``answer`` cut into small pieces; an HTTP answer's final blank line is a piece of its own."""
    if not answer.startswith(b"HTTP/"):
        sizes = (1, 2, 3)
        pieces, start = [], 0
        for number in range(len(answer)):
            if start >= len(answer):
                break
            end = start + sizes[number % len(sizes)]
            pieces.append(answer[start:end])
            start = end
        return pieces
    first_line = answer.index(b"\r\n")
    second_line = answer.index(b"\r\n", first_line + 2)
    cuts = {
        1,
        3,
        6,
        first_line // 2,
        first_line + 1,  # between the \r and the \n of the status line
        first_line + 2 + 5,  # inside the Proxy-Agent header
        second_line + 2 + 12,  # inside the padding header
        len(answer) - 20,
        len(answer) - 2,  # the final blank line alone
    }
    bounds = [0, *sorted(cut for cut in cuts if 0 < cut < len(answer)), len(answer)]
    return [answer[start:end] for start, end in itertools.pairwise(bounds) if end > start]


def _socks5_reply(code: int, bound: tuple[str, int] | None = None) -> bytes:
    address, port = b"\0\0\0\0", 0
    if bound is not None:
        with contextlib.suppress(OSError, ValueError):
            address, port = socket.inet_aton(bound[0]), bound[1]
    return bytes([5, code, 0, 1]) + address + port.to_bytes(2, "big")


def _http_reply(status: int, text: str, headers: bytes = b"") -> bytes:
    return (
        f"HTTP/1.1 {status} {text}\r\n".encode()
        + headers
        + b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )


async def _read_until(reader: asyncio.StreamReader, separator: bytes) -> bytes:
    data = await reader.readuntil(separator)
    if len(data) > HEAD_LIMIT:
        raise _Finished
    return data[: -len(separator)]


async def _read_string(reader: asyncio.StreamReader) -> str:
    return (await _read_until(reader, b"\0")).decode("utf-8", "replace")


async def _loopback_address(host: str) -> str | None:
    """The loopback address to connect to for ``host``, or None if it is not on loopback.

    Only IP literals and ``localhost`` are looked at: other names are refused without a lookup.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host.lower() != "localhost":
            return None
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        found = [ipaddress.ip_address(info[4][0]) for info in infos]
        loopback = sorted((a for a in found if a.is_loopback), key=lambda a: a.version)
        return str(loopback[0]) if loopback else None
    return str(address) if address.is_loopback else None


async def _until_hangup(reader: asyncio.StreamReader) -> None:
    """Read and drop what the client sends until it goes away (or ``HANGUP_LIMIT`` passes)."""

    async def drain() -> None:
        while await reader.read(65536):
            pass

    with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
        await asyncio.wait_for(drain(), HANGUP_LIMIT)


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while data := await source.read(65536):
        sink.write(data)
        await sink.drain()
    if not sink.is_closing() and sink.can_write_eof():
        sink.write_eof()


def _no_delay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _close(writer: asyncio.StreamWriter, transports: set[asyncio.WriteTransport]) -> None:
    writer.close()
    transports.discard(writer.transport)


# --- what the ``fault_proxy`` fixture starts ----------------------------------------------

HopKind = Protocol | Literal["https"]
"""What ``fault_proxy`` starts: a FaultProxy protocol, or ``https`` (its http proxy behind TLS)."""
FAULT_AUTH = ("fault-user", "pa:ss/w@rd")
"""Credentials of a proxy faulty at the socks5 auth step (percent-encoded in its URL)."""


@dataclass
class TlsFront:
    """A faulty http proxy behind TLS (a ``TlsRelay``, stunnel's part): an https hop whose
    CONNECT answer carries the fault, its close as close_notify + FIN, its reset as an RST."""

    inner: FaultProxy
    relay: TlsRelay
    ca_file: Path

    @property
    def port(self) -> int:
        return self.relay.port

    @property
    def destinations(self) -> list[tuple[str, int]]:
        return self.inner.destinations

    def url(self) -> dict[str, Any]:
        return {"url": f"https://{LOOPBACK}:{self.relay.port}", "ca_file": self.ca_file}


FaultProxyFactory = Callable[..., Any]
"""``fault_proxy(kind, step="reply", fault="pass")`` (the fixture in conftest.py): a
FaultProxy, or a TlsFront for ``https``."""
