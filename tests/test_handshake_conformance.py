"""The handshake conformance table: every reply a SOCKS4/4a, SOCKS5, RFC 1929 or HTTP CONNECT
proxy can give, and what botsession makes of it.

Each cell scripts the bytes a ``FaultProxy`` sends at one step (tests/faultproxy.py), in one
write or in small pieces, and requests ``getMe`` from the stand-in Bot API through a chain whose
hop 1 is a correct SOCKS5 proxy and whose hop 2 answers as scripted. A reply that opens a tunnel
must carry the request to the Bot API exactly once; any other reply is a ``ProxyHopError`` naming
hop 2 with the reason, the code and the words a user sees, and the Bot API receives nothing.
``connect_timeout`` is large (30 s), so a failure whose reason is not ``timeout`` came at once.

The same HTTP heads are also fed to the handshake directly, in one piece and byte by byte, to
show that the outcome does not depend on how the bytes are cut into reads.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme

from botsession import ProxyHopError, build_client_session, load_config
from botsession.errors import HandshakeError, Reason
from botsession.net.handshake import MAX_HTTP_REPLY, HandshakeStream, http_connect

from .faultproxy import FAULT_AUTH, FaultProxy, Protocol, Scripted, Step, TlsFront
from .servers import SERVER_THREADS, BackgroundLoop, BotApiStandIn
from .support import LOOPBACK, TOKEN, proxy_url
from .tls_relay import TlsRelay, server_context

CONNECT_TIMEOUT = 30.0
"""Large, so that a reply judged at once is never mistaken for a timeout on a slow machine."""


@dataclass(frozen=True)
class Refused:
    """The ProxyHopError a reply must cause."""

    reason: Reason
    code: int | None
    says: str
    """A fragment of the error's message."""


TUNNEL = None
"""The reply opens a tunnel: the request reaches the Bot API once."""
Outcome = Refused | None


@dataclass(frozen=True)
class Case:
    """One scripted reply and what it must lead to."""

    name: str
    protocol: Protocol
    step: Step
    reply: bytes
    outcome: Outcome
    credentials: bool = False
    """The client's hop carries a user name and password (the proxy then wants them too)."""
    split: bool = True
    """Also run with the reply in small pieces (not for extra bytes after a reply: in pieces
    they may arrive after the tunnel is handed on)."""

    def cells(self) -> list[Cell]:
        pieces = [None, 1 if len(self.reply) <= 600 else 4096] if self.split else [None]
        return [Cell(self, segment) for segment in pieces]


@dataclass(frozen=True)
class Cell:
    case: Case
    segment: int | None

    def __str__(self) -> str:
        cut = "one-write" if self.segment is None else f"{self.segment}-byte-pieces"
        return f"{self.case.protocol}:{self.case.step}:{self.case.name}:{cut}"


def rejected(code: int, says: str) -> Refused:
    return Refused("rejected", code, says)


def protocol(says: str, code: int | None = None) -> Refused:
    return Refused("protocol", code, says)


def auth(says: str, code: int | None = None) -> Refused:
    return Refused("auth", code, says)


# --- SOCKS4 / SOCKS4a ------------------------------------------------------------------------

BOUND4 = b"\x1f\x90\x7f\x00\x00\x01"  # port 8080, 127.0.0.1
SOCKS4_CASES = [
    Case("granted-0x5a", "socks4", "reply", b"\x00\x5a" + BOUND4, TUNNEL),
    Case("granted-zero-bound", "socks4", "reply", b"\x00\x5a" + bytes(6), TUNNEL),
    Case("socks4a-granted", "socks4a", "reply", b"\x00\x5a" + BOUND4, TUNNEL),
    Case(
        "rejected-0x5b",
        "socks4",
        "reply",
        b"\x00\x5b" + bytes(6),
        rejected(0x5B, "request rejected or failed (0x5b)"),
    ),
    Case(
        "no-identd-0x5c",
        "socks4",
        "reply",
        b"\x00\x5c" + bytes(6),
        rejected(0x5C, "the proxy cannot reach the client's identd (0x5c)"),
    ),
    Case(
        "identd-mismatch-0x5d",
        "socks4",
        "reply",
        b"\x00\x5d" + bytes(6),
        auth(
            "requires credentials (request rejected: identd reports a different user id (0x5d))",
            0x5D,
        ),
    ),
    Case(
        "socks4a-rejected-0x5b",
        "socks4a",
        "reply",
        b"\x00\x5b" + bytes(6),
        rejected(0x5B, "request rejected or failed (0x5b)"),
    ),
    Case(
        "unknown-code-0x5e",
        "socks4",
        "reply",
        b"\x00\x5e" + bytes(6),
        protocol("unknown socks4 reply code 0x5e"),
    ),
    Case(
        "unknown-code-0x00",
        "socks4",
        "reply",
        b"\x00\x00" + bytes(6),
        protocol("unknown socks4 reply code 0x00"),
    ),
    Case(
        "unknown-code-0x59",
        "socks4",
        "reply",
        b"\x00\x59" + bytes(6),
        protocol("unknown socks4 reply code 0x59"),
    ),
    Case(
        "version-0x04",
        "socks4",
        "reply",
        b"\x04\x5a" + BOUND4,
        protocol("the reply is not SOCKS4: it starts with bytes 04"),
    ),
    Case(
        "version-0x05",
        "socks4",
        "reply",
        b"\x05\x00\x00\x01" + bytes(6),
        protocol("the reply is not SOCKS4: it starts with bytes 05"),
    ),
    Case(
        "an-http-answer",
        "socks4",
        "reply",
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        protocol("the reply is not SOCKS4: it starts with 'H"),
    ),
    Case(
        "a-byte-after-the-reply",
        "socks4",
        "reply",
        b"\x00\x5a" + BOUND4 + b"!",
        protocol("sent 1 bytes more than its reply"),
        split=False,
    ),
]

# --- SOCKS5 greeting and RFC 1929 ------------------------------------------------------------

GREETING_CASES = [
    Case("method-0x00", "socks5", "greeting", b"\x05\x00", TUNNEL),
    Case("method-0x00-to-credentials", "socks5", "greeting", b"\x05\x00", TUNNEL, credentials=True),
    Case("method-0x02", "socks5", "greeting", b"\x05\x02", TUNNEL, credentials=True),
    Case(
        "method-0x02-without-credentials",
        "socks5",
        "greeting",
        b"\x05\x02",
        auth("the proxy requires credentials (requires a user name and password)"),
    ),
    Case(
        "method-0xff",
        "socks5",
        "greeting",
        b"\x05\xff",
        auth(
            "the proxy requires credentials (accepts none of the offered authentication "
            "methods; it probably requires a user name and password)"
        ),
    ),
    Case(
        "method-0xff-to-credentials",
        "socks5",
        "greeting",
        b"\x05\xff",
        auth(
            "the proxy rejected the credentials (accepts none of the offered authentication "
            "methods)"
        ),
        credentials=True,
    ),
    Case(
        "method-0x01-not-offered",
        "socks5",
        "greeting",
        b"\x05\x01",
        protocol("chose authentication method 0x01, not offered"),
    ),
    Case(
        "method-0x80-not-offered",
        "socks5",
        "greeting",
        b"\x05\x80",
        protocol("chose authentication method 0x80, not offered"),
        credentials=True,
    ),
    Case(
        "version-0x04",
        "socks5",
        "greeting",
        b"\x04\x00",
        protocol("the reply is not SOCKS5: it starts with bytes 04"),
    ),
    Case(
        "an-ssh-banner",
        "socks5",
        "greeting",
        b"SSH-2.0-OpenSSH_9.2p1\r\n",
        protocol("the reply is not SOCKS5: it starts with 'S"),
    ),
]

AUTH_CASES = [
    Case("version-1-status-0x00", "socks5", "auth", b"\x01\x00", TUNNEL, credentials=True),
    Case("version-5-status-0x00", "socks5", "auth", b"\x05\x00", TUNNEL, credentials=True),
    *(
        Case(
            f"version-{version}-status-{status:#04x}",
            "socks5",
            "auth",
            bytes([version, status]),
            auth(
                f"the proxy rejected the credentials (rejected the credentials (status {status:#04x}))",
                status,
            ),
            credentials=True,
        )
        for version, status in ((1, 0x01), (1, 0x02), (1, 0xFF), (5, 0x01))
    ),
    *(
        Case(
            f"version-{version:#04x}",
            "socks5",
            "auth",
            bytes([version, 0x00]),
            protocol(f"the reply is not SOCKS5: it starts with bytes {version:02x}"),
            credentials=True,
        )
        for version in (0x00, 0x02, 0x04)
    ),
]

# --- SOCKS5 connect reply --------------------------------------------------------------------

SOCKS5_TEXTS = {
    0x01: "general SOCKS server failure",
    0x02: "connection not allowed by ruleset",
    0x03: "network unreachable",
    0x04: "host unreachable",
    0x05: "connection refused",
    0x06: "TTL expired",
    0x07: "command not supported",
    0x08: "address type not supported",
}
PORT = b"\x1f\x90"


def socks5_reply(code: int = 0x00, bound: bytes = b"\x01" + bytes(4), version: int = 5) -> bytes:
    return bytes([version, code, 0x00]) + bound + PORT


def domain(length: int) -> bytes:
    return b"\x03" + bytes([length]) + b"p" * length


SOCKS5_CASES = [
    Case("succeeded-ipv4", "socks5", "reply", socks5_reply(bound=b"\x01\x7f\x00\x00\x01"), TUNNEL),
    Case(
        "succeeded-ipv6",
        "socks5",
        "reply",
        socks5_reply(bound=b"\x04" + bytes(15) + b"\x01"),
        TUNNEL,
    ),
    *(
        Case(f"succeeded-domain-{n}", "socks5", "reply", socks5_reply(bound=domain(n)), TUNNEL)
        for n in (0, 1, 255)
    ),
    Case(
        "succeeded-reserved-byte-set",
        "socks5",
        "reply",
        b"\x05\x00\x07\x01" + bytes(4) + PORT,
        TUNNEL,
    ),
    *(
        Case(
            f"failed-{code:#04x}",
            "socks5",
            "reply",
            socks5_reply(code),
            rejected(code, f"{text} ({code:#04x})"),
        )
        for code, text in SOCKS5_TEXTS.items()
    ),
    *(
        Case(
            f"unknown-code-{code:#04x}",
            "socks5",
            "reply",
            socks5_reply(code),
            rejected(code, f"unknown reply code {code:#04x} ({code:#04x})"),
        )
        for code in (0x09, 0xFF)
    ),
    *(
        Case(
            f"unknown-address-type-{kind}",
            "socks5",
            "reply",
            b"\x05\x00\x00" + bytes([kind]) + bytes(6),
            protocol(f"the connect reply has an unknown address type {kind}"),
        )
        for kind in (0x00, 0x02, 0x05)
    ),
    Case(
        "version-0x04",
        "socks5",
        "reply",
        socks5_reply(version=4),
        protocol("the reply is not SOCKS5: it starts with bytes 04"),
    ),
    Case(
        "a-socks4-answer",
        "socks5",
        "reply",
        b"\x00\x5a" + BOUND4,
        protocol("the reply is not SOCKS5: it starts with bytes 00"),
    ),
    *(
        Case(
            f"a-byte-after-{name}",
            "socks5",
            "reply",
            socks5_reply(bound=bound) + b"!",
            protocol("sent 1 bytes more than its reply"),
            split=False,
        )
        for name, bound in (
            ("ipv4", b"\x01" + bytes(4)),
            ("ipv6", b"\x04" + bytes(16)),
            ("domain-0", domain(0)),
            ("domain-1", domain(1)),
            ("domain-255", domain(255)),
        )
    ),
]

# --- HTTP CONNECT ----------------------------------------------------------------------------


def head(status_line: str, *fields: str, end: bytes = b"\r\n") -> bytes:
    """An HTTP response head with ``end`` as every line end."""
    lines = [status_line, *fields, ""]
    return b"".join(line.encode("utf-8") + end for line in lines)


OK = head("HTTP/1.1 200 Connection established")
CONTINUE = head("HTTP/1.1 100 Continue")


def padded(size: int, *, before: bytes = b"") -> bytes:
    """``before`` and a 200 head of exactly ``size`` bytes in all (one long header field)."""
    bare = before + head("HTTP/1.1 200 OK", "X-Pad: ")
    return before + head("HTTP/1.1 200 OK", "X-Pad: " + "p" * (size - len(bare)))


HTTP_TUNNELS = [
    Case("200", "http", "reply", OK, TUNNEL),
    Case("200-http-1.0", "http", "reply", head("HTTP/1.0 200 OK"), TUNNEL),
    Case("200-http-1.2", "http", "reply", head("HTTP/1.2 200 OK"), TUNNEL),
    Case("200-no-reason-phrase", "http", "reply", head("HTTP/1.1 200"), TUNNEL),
    Case("200-empty-reason-phrase", "http", "reply", head("HTTP/1.1 200 "), TUNNEL),
    Case("204", "http", "reply", head("HTTP/1.1 204 No Content"), TUNNEL),
    Case("206", "http", "reply", head("HTTP/1.1 206 Partial Content"), TUNNEL),
    Case("299", "http", "reply", head("HTTP/1.1 299 Fine"), TUNNEL),
    Case(
        "200-with-headers",
        "http",
        "reply",
        head("HTTP/1.1 200 OK", "Proxy-Agent: x/1", "Via: 1.1 p"),
        TUNNEL,
    ),
    Case("200-empty-field-value", "http", "reply", head("HTTP/1.1 200 OK", "X-Empty:"), TUNNEL),
    Case(
        "200-folded-field",
        "http",
        "reply",
        head("HTTP/1.1 200 OK", "X-Long: a", " b", "\tc"),
        TUNNEL,
    ),
    Case(
        "200-content-length-ignored",
        "http",
        "reply",
        head("HTTP/1.1 200 OK", "Content-Length: 5"),
        TUNNEL,
    ),
    Case(
        "200-transfer-encoding-ignored",
        "http",
        "reply",
        head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"),
        TUNNEL,
    ),
    Case("200-control-bytes-in-reason", "http", "reply", head("HTTP/1.1 200 O\x1bK\x7f"), TUNNEL),
    Case("bare-lf", "http", "reply", head("HTTP/1.1 200 OK", end=b"\n"), TUNNEL),
    Case(
        "bare-lf-with-headers",
        "http",
        "reply",
        head("HTTP/1.1 200 OK", "Via: 1.1 p", end=b"\n"),
        TUNNEL,
    ),
    Case("mixed-line-ends", "http", "reply", b"HTTP/1.1 200 OK\nVia: 1.1 p\r\n\n", TUNNEL),
    Case("crlf-then-bare-lf-end", "http", "reply", b"HTTP/1.1 200 OK\r\n\n", TUNNEL),
    Case("100-then-200", "http", "reply", CONTINUE + OK, TUNNEL),
    Case(
        "103-early-hints-then-200",
        "http",
        "reply",
        head("HTTP/1.1 103 Early Hints", "Link: </s.css>; rel=preload") + OK,
        TUNNEL,
    ),
    Case("102-102-then-200", "http", "reply", 2 * head("HTTP/1.1 102 Processing") + OK, TUNNEL),
    Case(
        "100-bare-lf-then-200",
        "http",
        "reply",
        head("HTTP/1.1 100 Continue", end=b"\n") + OK,
        TUNNEL,
    ),
    Case("16-interim-then-200", "http", "reply", 16 * CONTINUE + OK, TUNNEL),
    Case("head-of-64-kib", "http", "reply", padded(MAX_HTTP_REPLY), TUNNEL),
    Case(
        "interim-and-200-of-64-kib",
        "http",
        "reply",
        padded(MAX_HTTP_REPLY, before=CONTINUE),
        TUNNEL,
    ),
]

HTTP_REFUSALS = [
    Case(
        "FOO-200-BAR",
        "http",
        "reply",
        b"FOO 200 BAR\r\n\r\n",
        protocol("the reply is not HTTP: it starts with 'F"),
    ),
    Case(
        "lowercase-version",
        "http",
        "reply",
        head("http/1.1 200 OK"),
        protocol("the reply is not HTTP: it starts with 'h"),
    ),
    Case(
        "leading-space",
        "http",
        "reply",
        head(" HTTP/1.1 200 OK"),
        protocol("the reply is not HTTP: it starts with ' "),
    ),
    Case(
        "leading-empty-line",
        "http",
        "reply",
        b"\r\n" + OK,
        protocol("the reply is not HTTP: it starts with bytes 0d"),
    ),
    Case(
        "an-ssh-banner",
        "http",
        "reply",
        b"SSH-2.0-OpenSSH_9.2p1\r\n",
        protocol("the reply is not HTTP: it starts with 'S"),
    ),
    Case(
        "a-socks5-answer",
        "http",
        "reply",
        b"\x05\x00" + bytes(8),
        protocol("it looks like a SOCKS5 proxy"),
    ),
    *(
        Case(name, "http", "reply", head(line), protocol(f"malformed status line {line!r}"))
        for name, line in (
            ("four-digit-code", "HTTP/1.1 2000 OK"),
            ("two-digit-code", "HTTP/1.1 20 OK"),
            ("letters-for-code", "HTTP/1.1 abc OK"),
            ("two-spaces", "HTTP/1.1  200 OK"),
            ("no-space-after-code", "HTTP/1.1 200OK"),
            ("tab-separator", "HTTP/1.1\t200 OK"),
            ("version-11", "HTTP/11 200 OK"),
            ("version-1.x", "HTTP/1.x 200 OK"),
            ("no-code", "HTTP/1.1"),
            ("plus-sign-code", "HTTP/1.1 +20 OK"),
        )
    ),
    Case("http-2", "http", "reply", head("HTTP/2 200"), protocol("'HTTP/2 200' is not HTTP/1.x")),
    Case(
        "http-2.0",
        "http",
        "reply",
        head("HTTP/2.0 200 OK"),
        protocol("'HTTP/2.0 200 OK' is not HTTP/1.x"),
    ),
    Case(
        "version-1",
        "http",
        "reply",
        head("HTTP/1 200 OK"),
        protocol("'HTTP/1 200 OK' is not HTTP/1.x"),
    ),
    Case(
        "http-0.9",
        "http",
        "reply",
        head("HTTP/0.9 200 OK"),
        protocol("'HTTP/0.9 200 OK' is not HTTP/1.x"),
    ),
    Case(
        "101-switching-protocols",
        "http",
        "reply",
        head("HTTP/1.1 101 Switching Protocols", "Upgrade: h2c"),
        protocol("answered '101 Switching Protocols': not a tunnel", 101),
    ),
    Case(
        "field-without-colon",
        "http",
        "reply",
        head("HTTP/1.1 200 OK", "NoColonHere"),
        protocol("malformed header line 'NoColonHere'"),
    ),
    Case(
        "space-before-colon",
        "http",
        "reply",
        head("HTTP/1.1 200 OK", "Via : 1.1 p"),
        protocol("malformed header line 'Via : 1.1 p'"),
    ),
    Case(
        "empty-field-name",
        "http",
        "reply",
        head("HTTP/1.1 200 OK", ": x"),
        protocol("malformed header line ': x'"),
    ),
    Case(
        "nul-in-field-value",
        "http",
        "reply",
        head("HTTP/1.1 200 OK", "Via: 1.1\x00p"),
        protocol("malformed header line 'Via: 1.1\\x00p'"),
    ),
    Case(
        "fold-right-after-status-line",
        "http",
        "reply",
        head("HTTP/1.1 200 OK", " folded"),
        protocol("malformed header line ' folded'"),
    ),
    Case(
        "bare-cr-in-status-line",
        "http",
        "reply",
        b"HTTP/1.1 200 OK\rVia: x\r\n\r\n",
        protocol("a bare CR in the reply"),
    ),
    Case(
        "bare-cr-in-field",
        "http",
        "reply",
        b"HTTP/1.1 200 OK\r\nVia: x\ry\r\n\r\n",
        protocol("a bare CR in the reply"),
    ),
    Case(
        "bad-status-after-100",
        "http",
        "reply",
        CONTINUE + head("FOO 200 BAR"),
        protocol("the reply is not HTTP: it starts with 'F"),
    ),
    Case(
        "17-interim",
        "http",
        "reply",
        17 * CONTINUE + OK,
        protocol("more than 16 interim (1xx) responses"),
    ),
    Case(
        "head-over-64-kib",
        "http",
        "reply",
        padded(MAX_HTTP_REPLY + 1),
        protocol("the reply head is longer than 65536 bytes"),
    ),
    Case(
        "interim-and-200-over-64-kib",
        "http",
        "reply",
        padded(MAX_HTTP_REPLY + 1, before=CONTINUE),
        protocol("the reply head is longer than 65536 bytes"),
    ),
    Case(
        "status-line-over-64-kib",
        "http",
        "reply",
        b"HTTP/1.1 200 " + b"k" * MAX_HTTP_REPLY + b"\r\n\r\n",
        protocol("the reply head is longer than 65536 bytes"),
    ),
    *(
        Case(
            f"{code}",
            "http",
            "reply",
            head(f"HTTP/1.1 {code} {text}"),
            rejected(code, f"'{code} {text}'"),
        )
        for code, text in (
            (300, "Multiple Choices"),
            (302, "Found"),
            (307, "Temporary Redirect"),
            (400, "Bad Request"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (500, "Internal Server Error"),
            (502, "Bad Gateway"),
            (503, "Service Unavailable"),
            (504, "Gateway Timeout"),
        )
    ),
    Case(
        "403-http-1.0",
        "http",
        "reply",
        head("HTTP/1.0 403 Forbidden"),
        rejected(403, "'403 Forbidden'"),
    ),
    Case("403-no-reason-phrase", "http", "reply", head("HTTP/1.1 403"), rejected(403, "'403'")),
    Case("600", "http", "reply", head("HTTP/1.1 600 Odd"), rejected(600, "'600 Odd'")),
    Case("099", "http", "reply", head("HTTP/1.1 099 Odd"), rejected(99, "'099 Odd'")),
    Case(
        "100-then-403",
        "http",
        "reply",
        CONTINUE + head("HTTP/1.1 403 Forbidden"),
        rejected(403, "'403 Forbidden'"),
    ),
    Case(
        "403-bare-lf",
        "http",
        "reply",
        head("HTTP/1.1 403 Forbidden", end=b"\n"),
        rejected(403, "'403 Forbidden'"),
    ),
    Case(
        "403-with-body",
        "http",
        "reply",
        head("HTTP/1.1 403 Forbidden", "Content-Length: 9") + b"forbidden",
        rejected(403, "'403 Forbidden'"),
    ),
    Case(
        "407",
        "http",
        "reply",
        head("HTTP/1.1 407 Proxy Authentication Required", 'Proxy-Authenticate: Basic realm="p"'),
        auth("the proxy requires credentials ('407 Proxy Authentication Required')", 407),
    ),
    Case(
        "407-to-credentials",
        "http",
        "reply",
        head("HTTP/1.1 407 Proxy Authentication Required"),
        auth("the proxy rejected the credentials ('407 Proxy Authentication Required')", 407),
        credentials=True,
    ),
    Case(
        "401-to-credentials",
        "http",
        "reply",
        head("HTTP/1.0 401 Unauthorized"),
        auth("the proxy rejected the credentials ('401 Unauthorized')", 401),
        credentials=True,
    ),
    Case(
        "403-control-bytes-in-reason",
        "http",
        "reply",
        head("HTTP/1.1 403 Go\x1b[2J away\x07\x00\x7f"),
        rejected(403, "'403 Go\\x1b[2J away\\x07\\x00\\x7f'"),
    ),
    Case(
        "403-utf8-reason",
        "http",
        "reply",
        head("HTTP/1.1 403 Доступ запрещён"),
        rejected(403, "'403 Доступ запрещён'"),
    ),
    Case(
        "403-bidi-override-in-reason",
        "http",
        "reply",
        head("HTTP/1.1 403 a\u202eb"),
        rejected(403, "'403 a\\u202eb'"),
    ),
    Case(
        "403-latin-1-reason",
        "http",
        "reply",
        b"HTTP/1.1 403 Verboten \xfc\xff\r\n\r\n",
        rejected(403, "'403 Verboten \\xfc\\xff'"),
    ),
    Case(
        "403-long-reason",
        "http",
        "reply",
        head("HTTP/1.1 403 " + "n" * 200),
        rejected(403, "'403 " + "n" * 76 + "…'"),
    ),
    Case(
        "extra-bytes-after-200",
        "http",
        "reply",
        OK + b"SSH-2.0-x\r\n",
        protocol("sent 11 bytes more than its reply"),
        split=False,
    ),
    Case(
        "200-with-a-body",
        "http",
        "reply",
        head("HTTP/1.1 200 OK", "Content-Length: 5") + b"hello",
        protocol("sent 5 bytes more than its reply"),
        split=False,
    ),
    Case(
        "extra-bytes-after-100-and-200",
        "http",
        "reply",
        CONTINUE + OK + b"x",
        protocol("sent 1 bytes more than its reply"),
        split=False,
    ),
]

CASES = [*SOCKS4_CASES, *GREETING_CASES, *AUTH_CASES, *SOCKS5_CASES, *HTTP_TUNNELS, *HTTP_REFUSALS]
CELLS = [cell for case in CASES for cell in case.cells()]


# --- running a cell ----------------------------------------------------------------------------


@dataclass
class ScriptedProxies:
    """Starts FaultProxy instances (and TLS fronts for https) and stops them afterwards."""

    background: BackgroundLoop
    ca: trustme.CA
    ca_file: Path
    started: list[FaultProxy] = field(default_factory=list)
    relays: list[TlsRelay] = field(default_factory=list)

    def start(
        self,
        kind: Protocol,
        step: Step = "reply",
        reply: Scripted | None = None,
        *,
        credentials: bool = False,
    ) -> FaultProxy:
        username, password = FAULT_AUTH if credentials or step == "auth" else (None, None)
        server = FaultProxy(self.background, kind, step, "pass", username, password, reply)
        self.started.append(server.start())
        return server

    def behind_tls(self, inner: FaultProxy) -> TlsFront:
        relay = TlsRelay(self.background, inner.port, server_context(self.ca)).start()
        self.relays.append(relay)
        return TlsFront(inner, relay, self.ca_file)

    def stop(self) -> None:
        for relay in self.relays:
            relay.stop()
        for server in self.started:
            server.stop()


@pytest.fixture
def scripted(
    background: BackgroundLoop, ca: trustme.CA, ca_file: Path
) -> Iterator[ScriptedProxies]:
    proxies = ScriptedProxies(background, ca, ca_file)
    yield proxies
    proxies.stop()
    assert [error for server in proxies.started for error in server.errors] == []
    assert [error for relay in proxies.relays for error in relay.errors] == []


def hop_of(server: FaultProxy, *, credentials: bool) -> str:
    user, password = FAULT_AUTH if credentials else (None, None)
    return proxy_url(server.protocol, LOOPBACK, server.port, user, password, credentials=True)


async def get_me_through(route: list[Any], bot_api: BotApiStandIn) -> BaseException | None:
    """``getMe`` through ``route``; None when the stand-in answered it, else the error."""
    settings = {"proxy": route, "connect_timeout": CONNECT_TIMEOUT, "api": {"base": bot_api.base}}
    async with build_client_session(**settings) as client:
        try:
            async with client.get(f"{bot_api.base}/bot{TOKEN}/getMe") as response:
                body = await response.json()
        except Exception as error:  # judged by the caller, which names what it got
            return error
    assert body["result"]["username"] == "standin_bot", body
    return None


def assert_outcome(
    outcome: Outcome, error: BaseException | None, bot_api: BotApiStandIn, hop: int, hops: int
) -> None:
    if outcome is TUNNEL:
        assert error is None, f"{type(error).__name__}: {error}"
        assert len(bot_api.calls) == 1
        return
    assert isinstance(error, ProxyHopError), f"{type(error).__name__}: {error}"
    assert (error.hop_number, error.hop_count) == (hop, hops), str(error)
    assert (error.reason, error.code) == (outcome.reason, outcome.code), str(error)
    assert str(error).startswith(f"proxy hop {hop} of {hops} ("), str(error)
    assert outcome.says in str(error)
    assert not any(ord(char) < 32 or ord(char) == 127 for char in str(error)), repr(str(error))
    assert bot_api.calls == []


# --- the table ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS, ids=str)
async def test_reply(cell: Cell, scripted: ScriptedProxies, bot_api: BotApiStandIn) -> None:
    """Each scripted reply at hop 2 opens the tunnel or fails at once with its reason and code."""
    case = cell.case
    first = scripted.start("socks5")
    second = scripted.start(
        case.protocol, case.step, Scripted(case.reply, cell.segment), credentials=case.credentials
    )
    route = [first.url(), hop_of(second, credentials=case.credentials)]
    error = await get_me_through(route, bot_api)
    assert_outcome(case.outcome, error, bot_api, hop=2, hops=2)


HOP_1_CASES = [
    case
    for case in CASES
    if case.name in ("granted-0x5a", "100-then-200", "FOO-200-BAR", "407", "a-byte-after-ipv4")
    or (case.name, case.step) == ("method-0xff", "greeting")
]


@pytest.mark.parametrize("case", HOP_1_CASES, ids=lambda case: f"{case.protocol}:{case.name}")
async def test_reply_at_hop_1(
    case: Case, scripted: ScriptedProxies, bot_api: BotApiStandIn
) -> None:
    """A scripted reply at hop 1 of one or two hops has the same outcome, blamed on hop 1."""
    server = scripted.start(
        case.protocol, case.step, Scripted(case.reply), credentials=case.credentials
    )
    alone = [hop_of(server, credentials=case.credentials)]
    error = await get_me_through(alone, bot_api)
    assert_outcome(case.outcome, error, bot_api, hop=1, hops=1)
    bot_api.reset()
    error = await get_me_through([*alone, scripted.start("socks5").url()], bot_api)
    assert_outcome(case.outcome, error, bot_api, hop=1, hops=2)


HTTPS_CASES = [
    case
    for case in HTTP_TUNNELS + HTTP_REFUSALS
    if case.name
    in (
        "100-then-200",
        "bare-lf",
        "FOO-200-BAR",
        "head-over-64-kib",
        "407",
        "extra-bytes-after-200",
    )
]


@pytest.mark.parametrize("case", HTTPS_CASES, ids=lambda case: case.name)
async def test_reply_inside_tls(
    case: Case, scripted: ScriptedProxies, bot_api: BotApiStandIn
) -> None:
    """A CONNECT reply inside TLS with an https hop is read as the same reply in the clear."""
    front = scripted.behind_tls(scripted.start("http", "reply", Scripted(case.reply)))
    error = await get_me_through([scripted.start("socks5").url(), front.url()], bot_api)
    assert_outcome(case.outcome, error, bot_api, hop=2, hops=2)


def test_the_table_covers_every_code_and_form() -> None:
    """The table holds every SOCKS4 and SOCKS5 reply code, every bound-address type, every
    RFC 1929 status class and every HTTP status class."""

    def replies(protocol: Protocol, step: Step) -> list[bytes]:
        return [case.reply for case in CASES if (case.protocol, case.step) == (protocol, step)]

    assert {reply[1] for reply in replies("socks4", "reply")} >= {0x5A, 0x5B, 0x5C, 0x5D}
    socks5 = replies("socks5", "reply")
    assert {reply[1] for reply in socks5 if reply[0] == 5} >= set(range(0x09 + 1))
    assert {reply[3] for reply in socks5 if reply[:2] == b"\x05\x00"} >= {1, 3, 4}
    assert {reply[1] for reply in replies("socks5", "greeting")} >= {0x00, 0x02, 0xFF, 0x01}
    assert set(replies("socks5", "auth")) >= {b"\x01\x00", b"\x01\x01", b"\x05\x00"}
    http = replies("http", "reply")
    assert {reply[9:10] for reply in http if reply.startswith(b"HTTP/1")} >= {
        b"1",
        b"2",
        b"3",
        b"4",
        b"5",
    }


# --- the HTTP head, cut into reads in every way ------------------------------------------------

HTTP_CASES = HTTP_TUNNELS + HTTP_REFUSALS
EXTRA_BYTES = {
    "extra-bytes-after-200": 11,
    "200-with-a-body": 5,
    "extra-bytes-after-100-and-200": 1,
}
"""HTTP cases whose reply is followed by bytes of no reply: how many."""


async def connect_reply(pieces: list[bytes], hop_url: str) -> tuple[Outcome, int]:
    """What ``http_connect`` makes of ``pieces`` arriving as separate reads: its outcome and
    how many bytes it left unread."""
    hop = load_config(proxy=hop_url).proxy[0]  # type: ignore[index]
    stream = HandshakeStream(asyncio.get_running_loop())
    task = asyncio.ensure_future(http_connect(stream, hop, LOOPBACK, 443))
    for piece in pieces:
        await asyncio.sleep(0)
        if task.done():
            break
        stream.data_received(piece)
    stream.eof_received()
    try:
        await task
    except HandshakeError as error:
        return Refused(error.reason, error.code, str(error)), stream.leftover()
    return TUNNEL, stream.leftover()


@pytest.mark.parametrize("case", HTTP_CASES, ids=lambda case: case.name)
async def test_http_reply_is_read_alike_in_one_read_or_byte_by_byte(case: Case) -> None:
    """An HTTP CONNECT reply has one outcome whether it arrives in one read or byte by byte."""
    user, password = FAULT_AUTH if case.credentials else (None, None)
    url = proxy_url("http", LOOPBACK, 3128, user, password, credentials=True)
    whole, unread = await connect_reply([case.reply], url)
    bytewise, _ = await connect_reply([case.reply[i : i + 1] for i in range(len(case.reply))], url)
    if case.name in EXTRA_BYTES:  # the handshake succeeds; the tunnel refuses the extra bytes
        assert (whole, bytewise, unread) == (TUNNEL, TUNNEL, EXTRA_BYTES[case.name])
        return
    if whole is TUNNEL:
        assert unread == 0
    for outcome in (whole, bytewise):
        assert outcome_kind(outcome) == outcome_kind(case.outcome), outcome
        # The words about credentials are the tunnel's; the rest is the handshake's.
        if isinstance(outcome, Refused) and outcome.reason != "auth":
            assert isinstance(case.outcome, Refused)
            assert case.outcome.says in outcome.says


def outcome_kind(outcome: Outcome) -> tuple[Any, ...]:
    return ("tunnel",) if outcome is None else (outcome.reason, outcome.code)


# --- socks4 resolves a name to IPv4 only -------------------------------------------------------

DUAL_STACK_NAME = "dual-stack.test"
"""A name that resolves to ::1 first and 127.0.0.1 second, as localhost does on many machines
(RFC 6761 reserves .test, so no DNS server is ever asked)."""


@pytest.fixture
def dual_stack_name(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make ``DUAL_STACK_NAME`` resolve as a hosts file listing ::1 and then 127.0.0.1 does;
    returns the address family of each lookup of it by the client."""
    real = socket.getaddrinfo
    families: list[int] = []

    def resolve(host: Any, port: Any, family: int = 0, *args: Any, **kwargs: Any) -> Any:
        if host != DUAL_STACK_NAME or threading.current_thread().name.startswith(SERVER_THREADS):
            return real(host, port, family, *args, **kwargs)
        families.append(family)
        found = []
        for address, kind in (("::1", socket.AF_INET6), ("127.0.0.1", socket.AF_INET)):
            if family in (socket.AF_UNSPEC, kind):
                found += real(address, port, kind, *args, **kwargs)
        return found

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return families


@pytest.mark.skipif(not socket.has_ipv6, reason="needs ::1")
@pytest.mark.parametrize("kind", ["socks4", "socks5-rdns-off"])
async def test_a_name_after_a_local_dns_hop_is_resolved_for_its_protocol(
    kind: str, dual_stack_name: list[int], scripted: ScriptedProxies, background: BackgroundLoop
) -> None:
    """A socks4 hop has the next name resolved to IPv4 only, so a name that resolves to ::1
    first still works; socks5 with rdns off takes the first address of any family."""
    server = scripted.start("socks4" if kind == "socks4" else "socks5")
    hop: Any = server.url() if kind == "socks4" else {"url": server.url(), "rdns": False}
    api = BotApiStandIn(background, dual_stack=True).start()
    try:
        base = f"http://{DUAL_STACK_NAME}:{api.port}"
        async with (
            build_client_session(proxy=[hop], api={"base": base}) as client,
            client.get(f"{base}/bot{TOKEN}/getMe") as response,
        ):
            assert response.status == 200
        assert len(api.calls) == 1
    finally:
        api.stop()
    family, address = (
        (socket.AF_INET, "127.0.0.1") if kind == "socks4" else (socket.AF_UNSPEC, "::1")
    )
    assert dual_stack_name == [family]
    assert server.destinations == [(address, api.port)]
