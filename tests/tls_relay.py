"""An in-process stand-in for stunnel: TLS on a loopback port in front of a plain proxy.

``TlsRelay`` accepts TLS with a certificate of the test's choosing and relays the plain bytes
inside to ``target_port`` (an in-process HTTP proxy), recording what its clients sent once TLS
was up. Without a TLS context it is a wire tap: it relays raw bytes and records them, which is
what anyone on the path between botsession and a proxy sees.

It is written with protocols rather than streams so that it owns every transport it makes and
aborts each one itself, also when a TLS handshake fails (the client refused the certificate) or
a client leaves right after it: no transport is ever left for the garbage collector.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import trustme

from .servers import BackgroundLoop, Listener
from .support import LOOPBACK, reset


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
    _listener: Listener | None = None
    _transports: list[asyncio.BaseTransport] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    """Unexpected exceptions while setting up a connection (a bug in the relay)."""
    _openings: set[asyncio.Task[None]] = field(default_factory=set)
    _stopped: bool = False

    def start(self) -> TlsRelay:
        async def start() -> None:
            self._listener = await Listener.open(lambda: _Client(self))
            self.port = self._listener.port

        self.background.run(start())
        return self

    def stop(self) -> None:
        async def stop() -> None:
            self._stopped = True
            if self._listener is not None:
                await self._listener.close()
            for opening in list(self._openings):
                opening.cancel()
            await asyncio.gather(*self._openings, return_exceptions=True)
            for transport in self._transports:
                transport.abort()
            await asyncio.sleep(0)

        self.background.run(stop())
        assert self.errors == [], f"the relay failed: {self.errors!r}"

    def track(self, transport: asyncio.BaseTransport) -> None:
        """Keep ``transport`` to abort at stop(); one that arrives after stop() (accepted
        just before the server closed) is aborted at once."""
        self._transports.append(transport)
        if self._stopped:
            transport.abort()

    def opening(self, task: asyncio.Task[None]) -> None:
        """Keep a connection's set-up task until it ends (stop() cancels it)."""
        self._openings.add(task)
        task.add_done_callback(self._openings.discard)


class _Client(asyncio.Protocol):
    """The client's side of one relayed connection."""

    def __init__(self, relay: TlsRelay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | None = None
        self.pending = bytearray()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.relay.track(transport)
        if transport.is_closing():  # accepted as the relay stopped
            return
        self.relay.opening(asyncio.ensure_future(self._open_or_abort(transport)))

    async def _open_or_abort(self, raw: asyncio.Transport) -> None:
        try:
            await self._open(raw)
        except BaseException as error:  # cancelled by stop(), or a bug: leave nothing open
            raw.abort()
            if self.upstream is not None:
                self.upstream.abort()
            if not isinstance(error, Exception):
                raise
            self.relay.errors.append(error)  # stop() reports it

    async def _open(self, raw: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        if self.relay.tls is not None:
            try:
                tls = await loop.start_tls(
                    raw, self, self.relay.tls, server_side=True, ssl_handshake_timeout=5
                )
            except (TimeoutError, OSError):  # ssl.SSLError and resets included
                tls = None
            if tls is None:  # the handshake failed, or the client left right after it
                raw.abort()
                return
            self.relay.track(tls)
            raw = tls
        self.transport = raw
        self.relay.accepted += 1
        try:
            upstream, _ = await loop.create_connection(
                lambda: _Upstream(self), LOOPBACK, self.relay.target_port
            )
        except OSError:
            raw.abort()
            return
        self.relay.track(upstream)
        if self.closed:
            upstream.abort()
            return
        self.upstream = upstream
        upstream.write(bytes(self.pending))
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        self.relay.received += data
        if self.upstream is not None:
            self.upstream.write(data)
        else:
            self.pending += data

    def eof_received(self) -> bool:
        if self.upstream is not None and self.upstream.can_write_eof():
            self.upstream.write_eof()
            # A half-open TLS connection is not possible: asyncio closes it whatever is said.
            return self.relay.tls is None
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.upstream is not None:
            self.upstream.abort()


class _Upstream(asyncio.Protocol):
    """The proxy's side of one relayed connection: its close is passed on as a close (with
    TLS, a close_notify first) and its reset as a reset, as stunnel does."""

    def __init__(self, client: _Client) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        if self.client.transport is not None:
            self.client.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        client = self.client.transport
        if client is None:
            return
        if exc is None:
            client.close()  # after what is buffered; it is aborted at stop() at the latest
            return
        reset(client)


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
