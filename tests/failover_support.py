"""What the failover tests share (hedged connects, routes that heal, telemetry): proxies that are
silent or slow, the route states a session reports, and OpenTelemetry's in-memory SDK."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from botsession import ProxyHopError, load_config
from botsession.net import routing
from botsession.net.routing import Router

from .faultproxy import FaultProxy, FaultProxyFactory
from .servers import BackgroundLoop, Listener, stream_listener
from .support import LOOPBACK

UNHEDGED = 10
"""What a silent primary costs without hedging: the default connect_timeout (seconds). A
request through a silent primary done in under half of it was hedged, even on a machine 10x
slower than usual."""


def silent(start: FaultProxyFactory) -> FaultProxy:
    """A SOCKS5 proxy that accepts the TCP connection and never answers (packets "vanish")."""
    return start("socks5", step="greeting", fault="stall")


@dataclass
class Gauge:
    """Client connections open now, and the most open at once, over the relays that share it.

    A client that closes one connection and opens the next at once is not counted twice: at
    each new connection, those whose client has already closed (a FIN or RST waiting in the
    socket) are dropped before counting, as the relay may not have read that yet.
    """

    peak: int = 0
    _open: set[Any] = field(default_factory=set)

    @property
    def open(self) -> int:
        return len(self._open)

    def enter(self, sock: Any) -> None:
        self._open = {known for known in self._open if not _closed_by_peer(known)}
        self._open.add(sock)
        self.peak = max(self.peak, len(self._open))

    def leave(self, sock: Any) -> None:
        self._open.discard(sock)


def _closed_by_peer(sock: Any) -> bool:
    """Whether the other side of the transport's socket ``sock`` has closed it (looked at on
    a duplicate of the descriptor: asyncio's socket wrapper does not read)."""
    if sock.fileno() == -1:
        return True
    with socket.fromfd(sock.fileno(), socket.AF_INET, socket.SOCK_STREAM) as peek:
        try:
            return peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False  # open, nothing to read
        except OSError:
            return True  # reset


@dataclass
class SlowProxy:
    """A TCP forwarder that holds each new connection ``delay`` seconds before relaying it to
    ``upstream`` (a working proxy): a route that works, slowly. ``accepted`` counts connections,
    ``relayed`` those that got as far as the upstream proxy; ``gauge`` (shared by several
    forwarders) counts the client connections open at once."""

    background: BackgroundLoop
    upstream: int
    delay: float
    port: int = 0
    accepted: int = 0
    relayed: int = 0
    gauge: Gauge = field(default_factory=Gauge)
    _listener: Listener | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def url(self) -> str:
        return f"socks5://{LOOPBACK}:{self.port}"

    def start(self) -> SlowProxy:
        async def start() -> int:
            self._listener = await stream_listener(self._handle)
            return self._listener.port

        self.port = self.background.run(start())
        return self

    def stop(self) -> None:
        async def stop() -> None:
            if self._listener is not None:
                await self._listener.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        self.background.run(stop())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        client = writer.get_extra_info("socket")
        self.gauge.enter(client)
        try:
            await asyncio.sleep(self.delay)
            # The client went away meanwhile (its FIN is read: what it sent is still buffered).
            if getattr(reader, "_eof", False) or reader.exception() is not None:
                return
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.upstream)
            self.relayed += 1
            try:
                await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
            finally:
                up_writer.close()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self.gauge.leave(client)
            self._tasks.discard(task)


async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy ``source`` to ``sink`` until its end, then half-close ``sink``."""
    with contextlib.suppress(OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()


def states(holder: Any) -> list[str]:
    """The state of each route, primary first, as ``route_status()`` reports it."""
    return [status.state for status in holder.route_status()]


async def until(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Wait (at most ``timeout`` seconds) for ``condition``; whether it holds now."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110 - state of another thread
        await asyncio.sleep(step)
    return condition()


# --- scripted tunnels: what a race does, without the network --------------------------------


class FakeTunnel:
    """Stands for a tunnel: records whether it was closed, and gives its socket back then."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.closed = False
        self._release: Any = None

    def on_release(self, callback: Any) -> None:
        self._release = callback

    def close(self) -> None:
        self.closed = True
        if self._release is not None:
            self._release()
            self._release = None


def script_tunnels(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace open_tunnel (each call's route index goes to ``dialled``): route N is ready
    after ``ready[N]`` seconds (never if None, when
    ``gate`` is set if "gate", refused at once if "fail", and only when cancelled if
    "stubborn"; never, and ending a second after it is cancelled, if "lingering")."""
    script: dict[str, Any] = {
        "ready": {},
        "dialled": [],
        "opened": [],
        "cancelled": [],
        "gate": asyncio.Event(),
    }
    routes: dict[int, int] = {}

    async def fake_open_tunnel(route: Any, host: str, port: int, **_: Any) -> FakeTunnel:
        index = routes[route[0].port]
        script["dialled"].append(index)
        delay = script["ready"][index]
        try:
            if delay == "fail":
                raise ProxyHopError(1, 1, route[0].label(), "refused", "connection refused")
            if delay == "gate":
                await script["gate"].wait()
            else:
                await asyncio.sleep(3600 if delay in (None, "stubborn", "lingering") else delay)
        except asyncio.CancelledError:
            script["cancelled"].append(index)
            if delay == "lingering":  # takes a while to end, as a socket being closed
                await asyncio.sleep(1.0)
            if delay != "stubborn":
                raise
            # As asyncio.wait_for on Python 3.11 when the tunnel was ready as it was cancelled.
        tunnel = FakeTunnel(index)
        script["opened"].append(tunnel)
        return tunnel

    monkeypatch.setattr(routing, "open_tunnel", fake_open_tunnel)
    script["routes"] = routes
    return script


def fake_router(
    script: dict[str, Any],
    count: int,
    hedge: float | None,
    retry: float | None = None,
    *,
    limit: int | None = None,
    connect_timeout: float = 5,
) -> Router:
    """A router over ``count`` routes whose tunnels ``script`` (``scripted_tunnels``) makes; its
    timing settings as given, unchecked (the router takes what the configuration validated)."""
    config = load_config(
        proxy="socks5://127.0.0.1:1001",
        fallback=[f"socks5://127.0.0.1:{1001 + n}" for n in range(1, count)],
    )
    for index in range(count):
        script["routes"][1001 + index] = index
    return Router(
        config.routes,
        connect_timeout=connect_timeout,
        hedge_after=hedge,
        retry_primary_after=retry,
        limit=limit,
    )


# --- OpenTelemetry's SDK, in memory ---------------------------------------------------------


@dataclass
class Recorded:
    """What botsession recorded through the OpenTelemetry API since ``drain``."""

    reader: Any
    exporter: Any
    collected: list[Any] | None = None

    def drain(self) -> None:
        self.reader.get_metrics_data()
        self.exporter.clear()
        self.collected = None

    def points(self, name: str) -> list[Any]:
        """The data points of instrument ``name`` (collected once, at the first call after
        ``drain``: the reader gives deltas)."""
        if self.collected is None:
            data = self.reader.get_metrics_data()
            self.collected = [
                metric
                for resource in (data.resource_metrics if data else ())
                for scope in resource.scope_metrics
                if scope.scope.name == "botsession"
                for metric in scope.metrics
            ]
        return [point for m in self.collected if m.name == name for point in m.data.data_points]

    def spans(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())


_RECORDED: Recorded | None = None


def recorded() -> Recorded:
    """OpenTelemetry's SDK as this process's global providers (set once: the API allows no
    second), reading metrics as deltas and keeping finished spans in memory."""
    global _RECORDED  # noqa: PLW0603 - the providers are global by the API's design
    if _RECORDED is None:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
        from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        delta = AggregationTemporality.DELTA
        reader = InMemoryMetricReader(preferred_temporality={Counter: delta, Histogram: delta})
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(tracer_provider)
        _RECORDED = Recorded(reader, exporter)
    _RECORDED.drain()
    return _RECORDED
