"""A stand-in Telegram data center on loopback: it records the first MTProto transport frame
each client sends, then hangs up (or, with ``hang_up=False``, stays open and silent until the
client goes away). It speaks no MTProto: a client's handshake stops at its first message.

What a client sends first (https://core.telegram.org/mtproto/mtproto-transports): the
transport's tag (none for TcpFull, ``ef`` for abridged, ``eeeeeeee`` for intermediate), then
one frame holding an unencrypted message: auth_key_id 0 (8 bytes), message id (8), length (4)
and the body, ``req_pq_multi`` (constructor ``be7e8ef1``, then a 16-byte nonce).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from .servers import Listener, StreamServer

REQ_PQ_MULTI = struct.pack("<I", 0xBE7E8EF1)
"""The constructor of ``req_pq_multi``, as it is written on the wire (little-endian)."""
ABRIDGED_TAG = b"\xef"
INTERMEDIATE_TAG = b"\xee\xee\xee\xee"
READ_LIMIT = 10.0
"""Seconds a connection may take to send its first frame."""


@dataclass(frozen=True)
class Frame:
    """The first frame of one connection, as it arrived."""

    codec: str
    """``full``, ``abridged`` or ``intermediate``, as told by the first bytes."""
    raw: bytes
    """Every byte of the frame, the tag included."""
    payload: bytes
    """The MTProto message the frame carries."""
    at: float
    """When it was complete (``time.monotonic()``)."""

    def message_body(self) -> bytes:
        """The body of the unencrypted message, after auth_key_id, message id and length."""
        auth_key_id, _msg_id, length = struct.unpack("<qqi", self.payload[:20])
        assert auth_key_id == 0, "the first message is not unencrypted"
        body = self.payload[20:]
        assert len(body) == length, f"message length {length}, body {len(body)} bytes"
        return body

    def is_req_pq_multi(self) -> bool:
        body = self.message_body()
        return body[:4] == REQ_PQ_MULTI and len(body) == 4 + 16


def req_pq_multi() -> bytes:
    """An unencrypted req_pq_multi message, as a client's first one."""
    body = REQ_PQ_MULTI + os.urandom(16)
    return struct.pack("<qqi", 0, int(time.time()) << 32, len(body)) + body


class _Reader(Protocol):
    async def readexactly(self, n: int) -> bytes: ...


async def read_frame(reader: _Reader) -> tuple[str, bytes, bytes]:
    """The codec, the raw bytes and the payload of the first frame on ``reader``; a TcpFull
    frame's sequence number and CRC32 are checked."""
    first = await reader.readexactly(1)
    if first == ABRIDGED_TAG:
        raw, payload = await _read_abridged(reader)
        return "abridged", first + raw, payload
    rest = await reader.readexactly(3)
    if first + rest == INTERMEDIATE_TAG:
        head = await reader.readexactly(4)
        (length,) = struct.unpack("<i", head)
        payload = await reader.readexactly(length)
        return "intermediate", INTERMEDIATE_TAG + head + payload, payload
    head = first + rest
    (length,) = struct.unpack("<i", head)
    body = await reader.readexactly(length - 4)
    raw = head + body
    (seq,) = struct.unpack("<i", body[:4])
    (crc,) = struct.unpack("<I", raw[-4:])
    assert seq == 0, f"first TcpFull frame has sequence number {seq}"
    assert crc == zlib.crc32(raw[:-4]), "TcpFull frame with a bad CRC32"
    return "full", raw, body[4:-4]


async def _read_abridged(reader: _Reader) -> tuple[bytes, bytes]:
    head = await reader.readexactly(1)
    raw = head
    words = head[0]
    if words >= 0x7F:
        more = await reader.readexactly(3)
        raw += more
        words = int.from_bytes(more, "little")
    payload = await reader.readexactly(words * 4)
    return raw + payload, payload


class _Decrypting:
    """A reader that decrypts what it reads (obfuscated2's AES-CTR stream)."""

    def __init__(self, reader: asyncio.StreamReader, cipher: Any) -> None:
        self._reader = reader
        self._cipher = cipher

    async def readexactly(self, n: int) -> bytes:
        data: bytes = self._cipher.encrypt(await self._reader.readexactly(n))
        return data


async def read_obfuscated_frame(reader: asyncio.StreamReader) -> tuple[str, bytes, bytes]:
    """The first frame of an obfuscated2 connection (Telethon's TcpObfuscated): a 64-byte
    header whose bytes 8-56 are the client's AES-CTR key and IV and whose bytes 56-60 decrypt
    to the abridged transport's tag, then abridged frames, encrypted. ``raw`` is what arrived."""
    from telethon.crypto import AESModeCTR

    header = await reader.readexactly(64)
    cipher = AESModeCTR(header[8:40], header[40:56])
    tag = cipher.encrypt(header)[56:60]
    assert tag == ABRIDGED_TAG * 4, f"obfuscated2 header with tag {tag.hex()}"
    decrypting = _Decrypting(reader, cipher)
    raw, payload = await _read_abridged(decrypting)
    return "obfuscated", header + raw, payload


@dataclass
class MTProtoDC(StreamServer):
    """Records each connection's first frame (``frames``), or what it made of a connection
    that did not send a whole, valid one (``errors``)."""

    hang_up: bool = True
    obfuscated: bool = False
    """Clients speak obfuscated2 (Telethon's TcpObfuscated)."""
    at_once: bool = False
    """Hang up at once, before reading anything (a DC that refuses the client)."""
    frames: list[Frame] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    peers: list[tuple[str, int]] = field(default_factory=list)
    open_connections: int = 0
    host: str = "127.0.0.1"
    """Where it listens: ``::1`` for an IPv6 DC."""

    def start(self) -> MTProtoDC:
        async def start() -> None:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.create_server((self.host, 0), family=family)

            def protocol() -> asyncio.BaseProtocol:
                return asyncio.StreamReaderProtocol(asyncio.StreamReader(), self.handle)

            self._listener = Listener(sock, protocol)
            self.port = self._listener.port

        self.background.run(start())
        return self

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        self.peers.append(writer.get_extra_info("peername")[:2])
        if self.at_once:
            self.open_connections -= 1
            writer.close()
            return
        try:
            read = read_obfuscated_frame(reader) if self.obfuscated else read_frame(reader)
            codec, raw, payload = await asyncio.wait_for(read, READ_LIMIT)
            self.frames.append(Frame(codec, raw, payload, time.monotonic()))
            if not self.hang_up:
                with contextlib.suppress(Exception):
                    await reader.read()  # until the client goes away
        except (AssertionError, asyncio.IncompleteReadError, TimeoutError, OSError) as error:
            self.errors.append(f"{type(error).__name__}: {error}")
        finally:
            self.open_connections -= 1
            writer.close()
