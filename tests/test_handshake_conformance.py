"""The handshake conformance table: every reply a SOCKS4/4a, SOCKS5, RFC 1929 or HTTP CONNECT
proxy can give, and what botsession makes of it.

Each cell scripts the bytes a ``FaultProxy`` sends at one step (tests/faultproxy.py), in one
write or in small pieces, and requests ``getMe`` from the stand-in Bot API through a chain whose
hop 1 is a correct SOCKS5 proxy and whose hop 2 answers as scripted. A reply that opens a tunnel
must carry the request to the Bot API exactly once; any other reply is a ``ProxyHopError`` naming
hop 2 with the reason, the code and the words a user sees, and the Bot API receives nothing.
``connect_timeout`` is large (30 s), so a failure whose reason is not ``timeout`` came at once.

The same replies are also fed to the handshake directly, in one read and byte by byte, to show
that the outcome does not depend on how the bytes are cut into reads. The rest pins what a user
reads where the table does not reach: the wrong kind of server, a proxy that hangs up, a name
that does not resolve or cannot be encoded, credentials at RFC 1929's limits, TLS with the Bot
API through the tunnel, and the TLS session and ca_file of an https hop. These were found by
mutation testing (docs/development.md, Mutation testing).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from pydantic import SecretStr

from botsession import BotSessionWarning, ProxyHopError, build_client_session, load_config
from botsession.config_schema import ProxyHop, ProxyRoute
from botsession.errors import HandshakeError, Reason
from botsession.net.handshake import HANDSHAKES, MAX_HTTP_REPLY, HandshakeStream, ProxyTls
from botsession.net.tunnel import open_tunnel

from .failover_support import until
from .faultproxy import FAULT_AUTH, FaultProxy, Protocol, Scripted, Step, TlsFront
from .servers import SERVER_THREADS, BackgroundLoop, BotApiStandIn, SilentServer, StreamServer
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
    unread: int = 0
    """Bytes after the reply, which the handshake leaves and the tunnel refuses. Such a reply
    is sent in one write only: in pieces, the extra bytes may come after the tunnel is handed on."""

    def cells(self) -> list[Cell]:
        pieces = [None] if self.unread else [None, 1 if len(self.reply) <= 600 else 4096]
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
        unread=1,
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
            unread=1,
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
        protocol("it answered like a SOCKS5 proxy: is its scheme socks5:// rather than http://?"),
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
        "403-reason-of-80-characters",
        "http",
        "reply",
        head("HTTP/1.1 403 " + "😀" * 76),
        rejected(403, "'403 " + "😀" * 76 + "'"),
    ),
    Case(
        "403-reason-of-81-characters",
        "http",
        "reply",
        head("HTTP/1.1 403 " + "😀" * 77),
        rejected(403, "'403 " + "😀" * 76 + "…'"),
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
        unread=11,
    ),
    Case(
        "200-with-a-body",
        "http",
        "reply",
        head("HTTP/1.1 200 OK", "Content-Length: 5") + b"hello",
        protocol("sent 5 bytes more than its reply"),
        unread=5,
    ),
    Case(
        "extra-bytes-after-100-and-200",
        "http",
        "reply",
        CONTINUE + OK + b"x",
        protocol("sent 1 bytes more than its reply"),
        unread=1,
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


async def get_me_through(
    route: list[Any], bot_api: BotApiStandIn, **settings: Any
) -> BaseException | None:
    """``getMe`` through ``route``; None when the stand-in answered it, else the error."""
    settings.update(proxy=route, connect_timeout=CONNECT_TIMEOUT, api={"base": bot_api.base})
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

SOCKS5_GRANTED = socks5_reply()


def conversation(case: Case) -> tuple[bytes, bytes]:
    """The proxy's correct answers before the case's reply, and after it when the handshake
    goes on past it (a SOCKS5 greeting or authentication that succeeds)."""
    if case.protocol != "socks5":
        return b"", b""
    if case.step == "greeting":
        after = b"\x01\x00" if case.reply == b"\x05\x02" else b""
        return b"", after + SOCKS5_GRANTED if case.outcome is TUNNEL else b""
    if case.step == "auth":
        return b"\x05\x02", SOCKS5_GRANTED if case.outcome is TUNNEL else b""
    return (b"\x05\x02\x01\x00" if case.credentials else b"\x05\x00"), b""


async def handshake_outcome(
    scheme: str, pieces: list[bytes], *, credentials: bool = False
) -> tuple[Outcome, int]:
    """What the handshake of ``scheme`` makes of ``pieces`` arriving as separate reads: its
    outcome, and how many bytes it left unread."""
    user, password = FAULT_AUTH if credentials else (None, None)
    url = proxy_url(scheme, LOOPBACK, 1080, user, password, credentials=True)
    hop = load_config(proxy=url).proxy[0]  # type: ignore[index]
    stream = HandshakeStream(asyncio.get_running_loop())
    task = asyncio.ensure_future(HANDSHAKES[scheme](stream, hop, LOOPBACK, 443))
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


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.protocol}:{case.step}:{case.name}")
async def test_reply_is_read_alike_in_one_read_or_byte_by_byte(case: Case) -> None:
    """A reply has one outcome whether it arrives in one read or byte by byte."""
    before, after = conversation(case)
    reads = {
        "one read": [before + case.reply + after],
        "byte by byte": [before, *(case.reply[i : i + 1] for i in range(len(case.reply))), after],
    }
    for how, pieces in reads.items():
        outcome, unread = await handshake_outcome(
            case.protocol, pieces, credentials=case.credentials
        )
        if case.unread:  # the handshake succeeds; the tunnel refuses the extra bytes
            assert outcome is TUNNEL, how
            assert unread == (case.unread if how == "one read" else 0), how
            continue
        assert outcome_kind(outcome) == outcome_kind(case.outcome), (how, outcome)
        if outcome is TUNNEL:
            assert unread == 0, how
        # The words about credentials are the tunnel's; the rest is the handshake's.
        elif outcome.reason != "auth":
            assert isinstance(case.outcome, Refused)
            assert case.outcome.says in outcome.says, how


def outcome_kind(outcome: Outcome) -> tuple[Any, ...]:
    return ("tunnel",) if outcome is None else (outcome.reason, outcome.code)


TLS_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32)
WRONG_KIND = [
    (
        "socks4",
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        "the reply is not SOCKS4: it starts with 'HTTP/1.1 400 Bad Request'; "
        "it answered like an HTTP proxy: is its scheme http:// rather than socks4://?",
    ),
    (
        "socks5",
        b"SSH-2.0-OpenSSH_9.2p1\r\n",
        "the reply is not SOCKS5: it starts with 'SSH-2.0-OpenSSH_9.2p1'; "
        "it looks like an SSH server (ssh -D makes a SOCKS proxy on your side)",
    ),
    (
        "http",
        b"SSH-2.0-OpenSSH_9.2p1\r\n",
        "the reply is not HTTP: it starts with 'SSH-2.0-OpenSSH_9.2p1'; "
        "it looks like an SSH server (ssh -D makes a SOCKS proxy on your side)",
    ),
    (
        "socks4",
        b"\x15\x03\x03\x00\x02\x02\x28",
        "the reply is not SOCKS4: it starts with bytes 15 03 03 00 02 02 28; "
        "it answered like a TLS server: is its scheme https:// rather than socks4://?",
    ),
    (
        "http",
        TLS_HELLO,
        "the reply is not HTTP: it starts with bytes 16 03 01 02 00 01 00 01 fc 03 03 00 00 00 "
        "00 00 …; it answered like a TLS server: is its scheme https:// rather than http://?",
    ),
    (
        "socks4",
        b"\x05\x00\x00\x01" + bytes(6),
        "the reply is not SOCKS4: it starts with bytes 05 00 00 01 00 00 00 00 00 00; "
        "it answered like a SOCKS5 proxy: is its scheme socks5:// rather than socks4://?",
    ),
    (
        "http",
        b"\x00\x5b" + bytes(6),
        "the reply is not HTTP: it starts with bytes 00 5b 00 00 00 00 00 00; "
        "it answered like a SOCKS4 proxy: is its scheme socks4:// rather than http://?",
    ),
    (
        "socks5",
        b"\x00\x5b" + bytes(6),
        "the reply is not SOCKS5: it starts with bytes 00 5b 00 00 00 00 00 00; "
        "it answered like a SOCKS4 proxy: is its scheme socks4:// rather than socks5://?",
    ),
    ("http", b"FOO 200 BAR\r\n\r\n", "the reply is not HTTP: it starts with 'FOO 200 BAR'"),
    (
        "socks4",
        b"http/1.1 200 OK\r\n\r\n",
        "the reply is not SOCKS4: it starts with 'http/1.1 200 OK'",
    ),
    (
        "socks5",
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
        "the reply is not SOCKS5: it starts with 'SSH-2.0-OpenSSH_9.2p1 De'; "
        "it looks like an SSH server (ssh -D makes a SOCKS proxy on your side)",
    ),
    ("socks5", b"ssh-2.0-x\r\n", "the reply is not SOCKS5: it starts with 'ssh-2.0-x'"),
    ("http", b"FOO\x7f\r\n", "the reply is not HTTP: it starts with bytes 46 4f 4f 7f 0d 0a"),
    ("http", b"F\x1fO\r\n", "the reply is not HTTP: it starts with bytes 46 1f 4f 0d 0a"),
    ("http", b"\r\n\r\n", "the reply is not HTTP: it starts with bytes 0d 0a 0d 0a"),
    (
        "socks4",
        b"\x15" + bytes(15),
        "the reply is not SOCKS4: it starts with bytes 15"
        + " 00" * 15
        + "; it answered like a TLS server: is its scheme https:// rather than socks4://?",
    ),
    (
        "socks4",
        b"\x16" + bytes(16),
        "the reply is not SOCKS4: it starts with bytes 16"
        + " 00" * 15
        + " …; it answered like a TLS server: is its scheme https:// rather than socks4://?",
    ),
]


@pytest.mark.parametrize(("scheme", "reply", "message"), WRONG_KIND)
async def test_the_wrong_kind_of_server_is_recognised(
    scheme: str, reply: bytes, message: str
) -> None:
    """A reply from another kind of server says what it starts with, what it looks like and
    the scheme that would fit it."""
    outcome, _ = await handshake_outcome(scheme, [reply])
    assert outcome == Refused("protocol", None, message)


# --- socks4 resolves a name to IPv4 only -------------------------------------------------------

DUAL_STACK_NAME = "dual-stack.test"
"""A name that resolves to ::1 first and 127.0.0.1 second, as localhost does on many machines
(RFC 6761 reserves .test, so no DNS server is ever asked)."""


@pytest.fixture
def dual_stack_name(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make ``DUAL_STACK_NAME`` resolve as a hosts file listing ::1 and then 127.0.0.1 does,
    and names under .invalid fail without asking a DNS server; returns the address family of
    each lookup of ``DUAL_STACK_NAME`` by the client."""
    real = socket.getaddrinfo
    families: list[int] = []

    def resolve(host: Any, port: Any, family: int = 0, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".invalid"):  # RFC 6761: never resolves
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
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


async def test_a_failed_lookup_names_the_hop_that_needs_it(
    dual_stack_name: list[int], scripted: ScriptedProxies
) -> None:
    """When the target's name does not resolve after a socks4 hop 2, the error says hop 2 is
    socks4 and so this machine resolves the name."""
    route = [scripted.start("socks5").url(), scripted.start("socks4").url()]
    with pytest.raises(ProxyHopError) as caught:
        await open_tunnel(load_config(proxy=route).proxy, "api.invalid", 443, timeout=30)  # type: ignore[arg-type]
    assert (caught.value.hop_number, caught.value.reason) == (2, "dns")
    assert caught.value.detail == (
        "the lookup of api.invalid failed on this machine (hop 2 is socks4, so this machine "
        "resolves the name it connects to): Name or service not known"
    )


# --- a proxy that hangs up -----------------------------------------------------------------------


@dataclass(frozen=True)
class HangUp:
    kind: Protocol
    step: Step
    awaited: str
    """What the message says botsession waited for."""
    hint: bool
    """Whether the message says that some proxies hang up when they cannot reach the target
    (and, for HTTP CONNECT, that a SOCKS proxy hangs up on it)."""


HANG_UPS = [
    HangUp("socks4", "reply", "the SOCKS4 reply", hint=False),
    HangUp("socks5", "greeting", "the SOCKS5 greeting reply", hint=False),
    HangUp("socks5", "auth", "the SOCKS5 authentication reply", hint=False),
    HangUp("socks5", "reply", "the SOCKS5 connect reply", hint=True),
    HangUp("http", "reply", "the HTTP CONNECT reply", hint=True),
]


@pytest.mark.parametrize("hop", [1, 2])
@pytest.mark.parametrize("hang_up", HANG_UPS, ids=lambda h: f"{h.kind}:{h.step}")
async def test_a_hang_up_says_what_was_awaited(
    hang_up: HangUp, hop: int, scripted: ScriptedProxies, bot_api: BotApiStandIn
) -> None:
    """A proxy that closes instead of answering is reason closed, saying what botsession waited
    for, when a proxy does that, and that the hop before may have lost the connection."""
    credentials = hang_up.step == "auth"
    user, password = FAULT_AUTH if credentials else (None, None)
    faulty = FaultProxy(scripted.background, hang_up.kind, hang_up.step, "close", user, password)
    scripted.started.append(faulty.start())
    route = [hop_of(faulty, credentials=credentials)]
    if hop == 2:
        route.insert(0, scripted.start("socks5").url())
    error = await get_me_through(route, bot_api)
    assert isinstance(error, ProxyHopError), error
    assert (error.hop_number, error.reason) == (hop, "closed")
    expected = f"the proxy closed the connection while botsession waited for {hang_up.awaited}"
    if hang_up.hint and hang_up.kind == "http":
        # Not a byte of a status line, which an HTTP proxy sends even to refuse.
        expected += (
            "; a SOCKS proxy does this with an HTTP request (is its scheme socks5:// rather "
            "than http://?), and some HTTP proxies when they cannot reach or resolve "
            f"127.0.0.1:{bot_api.port}"
        )
    elif hang_up.hint:
        expected += (
            "; some proxies (ssh -D among them) do this when they cannot reach or resolve "
            f"127.0.0.1:{bot_api.port}"
        )
    if hop == 2:
        expected += " (or hop 1 lost its connection to it)"
    assert error.detail == expected
    assert bot_api.calls == []


# --- credentials at the edges ----------------------------------------------------------------


def canonical(server: FaultProxy, username: str | None, password: str | None) -> ProxyRoute:
    """A route of one hop built without validation (which refuses these credentials at load),
    to reach the handshake's own checks: its last line of defence."""
    hop = ProxyHop.model_construct(
        scheme=server.protocol,
        host=LOOPBACK,
        port=server.port,
        username=username,
        password=None if password is None else SecretStr(password),
        rdns=True,
        ca_file=None,
        verify=True,
    )
    return ProxyRoute.model_construct(root=(hop,))


@pytest.mark.parametrize(("username", "password"), [("u" * 255, "p" * 255), ("u", "p")])
async def test_socks5_credentials_of_1_to_255_bytes_are_sent(
    username: str, password: str, scripted: ScriptedProxies, bot_api: BotApiStandIn
) -> None:
    """RFC 1929 carries a user name and a password of 1 to 255 bytes each."""
    server = FaultProxy(scripted.background, "socks5", "auth", "pass", username, password)
    scripted.started.append(server.start())
    tunnel = await open_tunnel(
        canonical(server, username, password), LOOPBACK, bot_api.port, timeout=30
    )
    tunnel.close()


@pytest.mark.parametrize(
    ("username", "password"),
    [("u" * 256, "p"), ("u", "p" * 256), ("", "p"), ("u", ""), ("u", None)],
    ids=["user-256", "password-256", "empty-user", "empty-password", "no-password"],
)
async def test_other_socks5_credentials_are_refused_before_they_are_sent(
    username: str, password: str | None, scripted: ScriptedProxies, bot_api: BotApiStandIn
) -> None:
    """A socks5 user name or password of 0 or over 255 bytes (a hop given in canonical form
    skips the URL's checks) is reason request, and the proxy receives no credentials."""
    server = scripted.start("socks5", "auth")
    with pytest.raises(ProxyHopError) as caught:
        await open_tunnel(canonical(server, username, password), LOOPBACK, bot_api.port, timeout=30)
    assert (caught.value.reason, caught.value.hop_number) == ("request", 1)
    assert caught.value.detail == (
        f"cannot make the request for 127.0.0.1:{bot_api.port}: a socks5 user name and "
        "password are 1 to 255 bytes each"
    )
    assert server.destinations == []


async def test_an_http_password_that_is_not_unicode_text_is_sent_as_is(
    scripted: ScriptedProxies, bot_api: BotApiStandIn
) -> None:
    """A password holding an undecodable byte (a lone surrogate, as from the environment) is
    sent, never an encoding error that would carry it."""
    server = scripted.start("http")
    tunnel = await open_tunnel(
        canonical(server, "u", "p\udcff"), LOOPBACK, bot_api.port, timeout=30
    )
    tunnel.close()
    # The proxy notes the destination just after its reply: the client may be faster.
    assert await until(lambda: bool(server.destinations), 30)
    assert server.destinations == [(LOOPBACK, bot_api.port)]


# --- the TLS session with an https hop --------------------------------------------------------


def certificate_chain(tmp_path: Path) -> tuple[ssl.SSLContext, Path, datetime]:
    """A CA (its file) and a server context whose certificate's subject has every attribute
    RFC 4514 names, and an e-mail address; and when the certificate expires."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC).replace(microsecond=0)
    expiry = now + timedelta(days=30)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Test CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
        ]
    )
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "test"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ZZ"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "State"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Town"),
            x509.NameAttribute(NameOID.STREET_ADDRESS, "1 Road"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops"),
            x509.NameAttribute(NameOID.COMMON_NAME, "proxy.test"),
            x509.NameAttribute(NameOID.USER_ID, "p1"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@proxy.test"),
        ]
    )

    def certificate(subject: x509.Name, public: Any, *, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(expiry)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            address = ipaddress.ip_address(LOOPBACK)
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(address)]), critical=False
            )
        return builder.sign(ca_key, hashes.SHA256())

    pem = serialization.Encoding.PEM
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(certificate(ca_name, ca_key.public_key(), ca=True).public_bytes(pem))
    chain = tmp_path / "chain.pem"
    chain.write_bytes(
        certificate(name, key.public_key(), ca=False).public_bytes(pem)
        + key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain)
    return context, ca_file, expiry


@pytest.mark.parametrize("verify", [True, False])
async def test_the_tls_session_with_an_https_hop_is_described(
    verify: bool, scripted: ScriptedProxies, bot_api: BotApiStandIn, tmp_path: Path
) -> None:
    """The tunnel tells the TLS version, the certificate's subject and issuer (most specific
    part first) and its expiry, whether or not the certificate was checked."""
    context, ca_file, expiry = certificate_chain(tmp_path)
    inner = scripted.start("http")
    relay = TlsRelay(scripted.background, inner.port, context).start()
    scripted.relays.append(relay)
    hop: dict[str, Any] = {"url": f"https://{LOOPBACK}:{relay.port}"}
    hop.update({"ca_file": ca_file} if verify else {"verify": False})
    with pytest.warns(BotSessionWarning) if not verify else contextlib.nullcontext():
        route = load_config(proxy=hop).proxy
    tunnel = await open_tunnel(route, LOOPBACK, bot_api.port, timeout=30)  # type: ignore[arg-type]
    tunnel.close()
    # A checked certificate is described from what TLS decoded, an unchecked one by cryptography
    # (which has no name for the e-mail address but its OID).
    email = "emailAddress" if verify else "1.2.840.113549.1.9.1"
    assert tunnel.proxy_tls == (
        ProxyTls(
            server_hostname=LOOPBACK,
            version="TLSv1.3",
            verified=verify,
            subject=(
                f"{email}=ops@proxy.test, UID=p1, CN=proxy.test, OU=Ops, O=Example, "
                "STREET=1 Road, L=Town, ST=State, C=ZZ, DC=test"
            ),
            issuer="O=Example, CN=Test CA",
            not_after=expiry,
        ),
    )


# --- TLS with the Bot API through the tunnel ----------------------------------------------------


async def test_tls_with_the_server_checks_its_name_through_the_tunnel(
    scripted: ScriptedProxies, background: BackgroundLoop, ca: trustme.CA, ca_file: Path
) -> None:
    """TLS with the Bot API runs through every hop and checks the server's name: a certificate
    from a trusted CA but for another name is reason tls, blamed on the last hop."""
    route = [scripted.start("socks5").url(), scripted.start("http").url()]
    for name, works in (("127.0.0.1", True), ("api.test", False)):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(name).configure_cert(context)
        api = BotApiStandIn(background, tls=context).start()
        try:
            error = await get_me_through(route, api, ssl={"ca_file": ca_file})
            assert len(api.calls) == (1 if works else 0)
        finally:
            api.stop()
        if works:
            assert error is None, error
            continue
        assert isinstance(error, ProxyHopError), error
        assert (error.hop_number, error.reason) == (2, "tls")
        assert error.detail == (
            f"the TLS handshake with 127.0.0.1:{api.port} failed: certificate verify failed: "
            "IP address mismatch, certificate is not valid for '127.0.0.1'."
        )


async def test_a_unicode_target_name_is_sent_as_idna(
    scripted: ScriptedProxies, bot_api: BotApiStandIn
) -> None:
    """A target name in Unicode goes to a socks5 proxy as its IDNA form (UTS 46 mapping), and a
    name IDNA cannot encode is reason request, sent to no proxy."""
    server = scripted.start("socks5")
    route = load_config(proxy=server.url()).proxy
    with pytest.raises(ProxyHopError) as caught:
        await open_tunnel(route, "Пример.test", 443, timeout=30)  # type: ignore[arg-type]
    assert (caught.value.reason, caught.value.code) == ("rejected", 0x02)
    assert server.requested == [("xn--e1afmkfd.test", 443)]
    with pytest.raises(ProxyHopError) as caught:
        await open_tunnel(route, "☃.test", 443, timeout=30)  # type: ignore[arg-type]
    assert caught.value.reason == "request"
    assert caught.value.detail == (
        "cannot make the request for ☃.test:443: the host name '☃.test' cannot be encoded"
    )
    assert server.requested == [("xn--e1afmkfd.test", 443)]


async def test_an_https_hop_that_hangs_up_during_tls_is_explained(
    background: BackgroundLoop, bot_api: BotApiStandIn
) -> None:
    """An https hop that closes the connection instead of answering TLS is reason tls, with a
    hint that it may not be a TLS proxy."""
    hanging_up = SilentServer(background, hang_up=True).start()
    try:
        route = [f"https://{LOOPBACK}:{hanging_up.port}"]
        error = await get_me_through(route, bot_api)
    finally:
        hanging_up.stop()
    assert isinstance(error, ProxyHopError), error
    assert (error.hop_number, error.reason) == (1, "tls")
    assert error.detail == (
        "the proxy closed the connection during the TLS handshake; is it a TLS (https://) "
        "proxy? a plain HTTP proxy is http://, a SOCKS proxy socks5://"
    )


async def test_a_ca_file_that_is_no_longer_pem_is_named(
    scripted: ScriptedProxies, bot_api: BotApiStandIn, ca_file: Path, tmp_path: Path
) -> None:
    """A ca_file whose content is no longer certificates is reason tls, naming the file and
    what OpenSSL found wrong."""
    copy = tmp_path / "proxy-ca.pem"
    shutil.copyfile(ca_file, copy)
    front = scripted.behind_tls(scripted.start("http"))
    route = load_config(proxy={"url": front.url()["url"], "ca_file": copy}).proxy
    copy.write_text("not a certificate\n")
    with pytest.raises(ProxyHopError) as caught:
        await open_tunnel(route, LOOPBACK, bot_api.port, timeout=30)  # type: ignore[arg-type]
    assert (caught.value.reason, caught.value.detail) == (
        "tls",
        f"cannot load the ca_file {copy} (NO_CERTIFICATE_OR_CRL_FOUND)",
    )


@pytest.mark.parametrize("changed", ["mtime", "size"])
async def test_a_ca_file_replaced_in_place_is_read_again(
    changed: str, scripted: ScriptedProxies, bot_api: BotApiStandIn, tmp_path: Path
) -> None:
    """The CAs of a ca_file are read again when the file changes, whether its time or only its
    size tells: a proxy with a certificate from the new CA is then trusted."""
    old_ca, new_ca = trustme.CA(), trustme.CA()
    path = tmp_path / "proxy-ca.pem"
    old_pem, new_pem = old_ca.cert_pem.bytes(), new_ca.cert_pem.bytes()
    size = max(len(old_pem), len(new_pem)) + 1
    old_pem, new_pem = old_pem.ljust(size, b"\n"), new_pem.ljust(size, b"\n")  # same size
    if changed == "size":
        new_pem += b"\n"
    path.write_bytes(old_pem)

    async def through(ca: trustme.CA) -> None:
        relay = TlsRelay(scripted.background, scripted.start("http").port, server_context(ca))
        scripted.relays.append(relay.start())
        hop = {"url": f"https://{LOOPBACK}:{relay.port}", "ca_file": path}
        tunnel = await open_tunnel(load_config(proxy=hop).proxy, LOOPBACK, bot_api.port, timeout=30)  # type: ignore[arg-type]
        tunnel.close()

    await through(old_ca)
    before = path.stat()
    path.write_bytes(new_pem)
    if changed == "size":  # the same modification time: only the size tells
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    else:  # the same size: only the time tells
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    await through(new_ca)


async def test_socks4_refuses_an_ipv6_target_before_sending(scripted: ScriptedProxies) -> None:
    """socks4 carries IPv4 addresses only: an IPv6 target is reason request, and the proxy is
    asked for nothing."""
    server = scripted.start("socks4")
    with pytest.raises(ProxyHopError) as caught:
        await open_tunnel(load_config(proxy=server.url()).proxy, "::1", 443, timeout=30)  # type: ignore[arg-type]
    assert (caught.value.reason, caught.value.hop_number) == ("request", 1)
    assert caught.value.detail == (
        "cannot make the request for [::1]:443: socks4 reaches IPv4 addresses only, not ::1"
    )
    assert server.requested == []


# --- a scheme that does not fit the proxy (issue #19) ----------------------------------------

SILENT_WAIT = 1.0
"""connect_timeout for a proxy that stays silent: its hint comes with the timeout."""


@dataclass(frozen=True)
class WrongScheme:
    kind: str
    """The kind of proxy running."""
    scheme: str
    """The scheme written for it."""
    reason: Reason
    ending: str
    """How the error's detail ends."""


WRONG_SCHEME = [
    WrongScheme(
        "http",
        "socks5",
        "timeout",
        "(waiting for the SOCKS5 greeting reply); it accepted the connection but said nothing "
        "to the SOCKS5 greeting, as an HTTP proxy does (it waits for a request line): is its "
        "scheme http:// rather than socks5://?",
    ),
    WrongScheme(
        "http",
        "socks4",
        "timeout",
        "said nothing to the SOCKS4 request, as an HTTP proxy does (it waits for a request "
        "line): is its scheme http:// rather than socks4://?",
    ),
    WrongScheme(
        "http",
        "https",
        "timeout",
        "(waiting for the TLS handshake with the proxy); it accepted the connection but said "
        "nothing to the TLS ClientHello, as an HTTP proxy does (it waits for a request line): "
        "is its scheme http:// rather than https://?",
    ),
    WrongScheme(
        "socks5",
        "http",
        "protocol",
        "the reply is not HTTP: it starts with bytes 00 00; it answered like a SOCKS proxy: is "
        "its scheme socks5:// (or socks4://) rather than http://? (while waiting for the HTTP "
        "CONNECT reply)",
    ),
    WrongScheme(
        "socks4",
        "http",
        "protocol",
        "it answered like a SOCKS4 proxy: is its scheme socks4:// rather than http://? (while "
        "waiting for the HTTP CONNECT reply)",
    ),
    WrongScheme(
        "socks4",
        "socks5",
        "protocol",
        "it answered like a SOCKS4 proxy: is its scheme socks4:// rather than socks5://? (while "
        "waiting for the SOCKS5 greeting reply)",
    ),
    WrongScheme(
        "socks5",
        "socks4",
        "protocol",
        "unknown socks4 reply code 0x00: it did not answer like a SOCKS4 proxy; is its scheme "
        "socks5:// rather than socks4://? (while waiting for the SOCKS4 reply)",
    ),
    WrongScheme(
        "socks4",
        "https",
        "tls",
        "the TLS handshake with the proxy failed (wrong version number): it answered the "
        "ClientHello with bytes 00 5b, like a SOCKS4 proxy: is its scheme socks4:// rather than "
        "https://?",
    ),
]


@pytest.mark.parametrize("hop", [1, 2])
@pytest.mark.parametrize("case", WRONG_SCHEME, ids=lambda c: f"{c.kind}-as-{c.scheme}")
async def test_a_proxy_written_with_another_kinds_scheme_is_named_with_the_fitting_scheme(
    proxy: Any, case: WrongScheme, hop: int
) -> None:
    """A real proxy of one kind written with another's scheme fails at its hop with what it
    answered like (or its silence) and the scheme that would fit it."""
    route = [proxy(case.kind).url(case.scheme)]
    if hop == 2:
        route.insert(0, proxy("socks5").url())
    hops = load_config(proxy=route).proxy
    assert hops is not None
    timeout = SILENT_WAIT if case.reason == "timeout" else CONNECT_TIMEOUT
    with pytest.raises(ProxyHopError) as caught:
        await open_tunnel(hops, LOOPBACK, 9, timeout=timeout)
    error = caught.value
    assert (error.hop_number, error.reason) == (hop, case.reason), str(error)
    assert str(error).startswith(f"proxy hop {hop} of {hop} ({case.scheme}://127.0.0.1:")
    assert error.detail.endswith(case.ending), error.detail


@dataclass
class HalfAnswer(StreamServer):
    """Answers a SOCKS5 greeting with its first byte only, then says nothing more."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readexactly(3)  # 05 01 00: the greeting
            writer.write(b"\x05")
            await writer.drain()
            await reader.read()  # until the client gives up
        writer.close()


@pytest.mark.parametrize("fault", ["half-answer", "stalled-connect"])
async def test_a_slow_socks_proxy_that_said_something_gets_no_hint(
    background: BackgroundLoop, fault: str
) -> None:
    """A SOCKS5 proxy that began to answer (half its greeting reply, or the whole of it before
    a silent connect reply) times out without the hint about HTTP proxies: it spoke SOCKS5."""
    server: HalfAnswer | FaultProxy = (
        HalfAnswer(background)
        if fault == "half-answer"
        else FaultProxy(background, "socks5", "reply", "stall")
    )
    server.start()
    try:
        hops = load_config(proxy=f"socks5://{LOOPBACK}:{server.port}").proxy
        assert hops is not None
        with pytest.raises(ProxyHopError) as caught:
            await open_tunnel(hops, LOOPBACK, 9, timeout=SILENT_WAIT)
    finally:
        server.stop()
    step = "greeting" if fault == "half-answer" else "connect"
    assert caught.value.reason == "timeout"
    assert caught.value.detail.endswith(f"(waiting for the SOCKS5 {step} reply)")
