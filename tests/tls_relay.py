"""An in-process stand-in for stunnel: TLS on a loopback port in front of a plain proxy.

``TlsRelay`` accepts TLS with a certificate of the test's choosing and relays the plain bytes
inside to ``target_port`` (an in-process HTTP proxy), recording what its clients sent once TLS
was up. Without a TLS context it is a wire tap: it relays raw bytes and records them, which is
what anyone on the path between botsession and a proxy sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import trustme

from .servers import BackgroundLoop
from .support import LOOPBACK


@dataclass
class TlsRelay:
    """Relays each connection to ``target_port``; with ``tls``, it is the TLS end of them."""

    background: BackgroundLoop
    target_port: int
    tls: ssl.SSLContext | None = None
    port: int = 0
    accepted: int = 0
    """Connections relayed (with TLS: those whose handshake completed)."""
    received: bytearray = field(default_factory=bytearray)
    """Everything clients sent, after TLS (without TLS: the raw bytes)."""
    _server: asyncio.Server | None = None
    _transports: list[asyncio.BaseTransport] = field(default_factory=list)

    def start(self) -> TlsRelay:
        async def start() -> None:
            # TLS is started in the handler, not by the server: a handshake that fails (the
            # client refused the certificate) leaves a transport the relay itself aborts.
            self._server = await asyncio.start_server(self._relay, LOOPBACK, 0)
            self.port = self._server.sockets[0].getsockname()[1]

        self.background.run(start())
        return self

    def stop(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            for transport in self._transports:
                transport.abort()
            await asyncio.sleep(0)

        self.background.run(stop())

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = writer.transport
        self._transports.append(raw)
        if self.tls is not None:
            try:
                await writer.start_tls(self.tls, ssl_handshake_timeout=5)
            except (TimeoutError, OSError):  # ssl.SSLError and resets included
                raw.abort()
                return
            if writer.transport is None:
                # The client left right after the handshake: asyncio hands back no transport,
                # and a StreamWriter without one fails in __del__ (CPython 3.11).
                writer._transport = raw  # type: ignore[attr-defined]
                raw.abort()
                return
            self._transports.append(writer.transport)
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._transports.append(up_writer.transport)
        await asyncio.gather(
            self._pump(reader, up_writer, record=True), self._pump(up_reader, writer, record=False)
        )

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, record: bool
    ) -> None:
        try:
            while data := await source.read(65536):
                if record:
                    self.received += data
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                sink.transport.abort()


def server_context(
    ca: trustme.CA,
    *names: str,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> ssl.SSLContext:
    """A server TLS context with a certificate from ``ca`` for ``names`` (127.0.0.1 by default),
    valid from ``not_before`` (an hour ago) to ``not_after`` (a year from now)."""
    now = datetime.now(UTC)
    cert = ca.issue_cert(
        *(names or ("127.0.0.1",)),
        not_before=not_before or now - timedelta(hours=1),
        not_after=not_after or now + timedelta(days=365),
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context
