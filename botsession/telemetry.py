"""Metrics and traces of connecting through proxy routes, through the OpenTelemetry API.

Optional: with ``opentelemetry-api`` installed (``pip install 'botsession[otel]'``) the router
records, through whatever ``MeterProvider`` and ``TracerProvider`` the application set up:

- histogram ``botsession.proxy.connect.duration`` (seconds): how long each hop of a route took
  to answer, attributes ``botsession.route.index`` and ``botsession.hop.index`` (from 0),
  ``botsession.proxy.scheme``, and ``error.type`` (the ``ProxyHopError`` reason, or
  ``cancelled`` for an attempt given up because another route was ready first) on failure;
- counter ``botsession.route.switches``: each change of the active route, attributes
  ``botsession.route.index`` (the route now active), ``botsession.route.previous_index`` and
  ``botsession.switch.reason`` (``failed``, ``hedged`` or ``recovered``);
- a span ``botsession.proxy.connect`` per attempt to connect through a route (a health check
  too, as a root span marked ``botsession.health_check``), with one child span
  ``botsession.proxy.hop`` per hop that answered or failed.

Spans are made when an attempt ends, with the times it took, so the connect itself does no
telemetry work. No attribute holds a credential or a URL: hops appear by index, scheme, host
and port; a failure by its reason and, when it mentions no user name or password, its detail.

Without the API nothing is imported (one failed import, once) and ``current()`` is None.
"""

from __future__ import annotations

import importlib.metadata
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config_schema import ProxyRoute

CONNECT_DURATION = "botsession.proxy.connect.duration"
ROUTE_SWITCHES = "botsession.route.switches"
CONNECT_SPAN = "botsession.proxy.connect"
HOP_SPAN = "botsession.proxy.hop"

ROUTE_INDEX = "botsession.route.index"
HOP_INDEX = "botsession.hop.index"
PROXY_SCHEME = "botsession.proxy.scheme"
ERROR_TYPE = "error.type"
PREVIOUS_ROUTE_INDEX = "botsession.route.previous_index"
SWITCH_REASON = "botsession.switch.reason"
HEALTH_CHECK = "botsession.health_check"
HEDGED = "botsession.hedged"

CANCELLED = "cancelled"
"""``error.type`` of an attempt given up because another route was ready first."""

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Histogram buckets (seconds) from a loopback hop to a connect timeout."""

_UNLOADED: Any = object()
_telemetry: Telemetry | None = _UNLOADED


def current() -> Telemetry | None:
    """The recorder, or None when the OpenTelemetry API is not installed (checked once)."""
    global _telemetry  # noqa: PLW0603 - loaded once, on first use
    if _telemetry is _UNLOADED:
        try:
            from opentelemetry import metrics, trace
        except ImportError:
            _telemetry = None
        else:
            _telemetry = Telemetry(metrics, trace)
    return _telemetry


def _version() -> str | None:
    # From the installed distribution: importing the package's __init__ would point back up.
    try:
        return importlib.metadata.version("botsession")
    except importlib.metadata.PackageNotFoundError:
        return None


class Telemetry:
    """Instruments and a tracer from the global OpenTelemetry providers (proxies until the
    application sets them, as the API provides)."""

    def __init__(self, metrics: Any, trace: Any) -> None:
        meter = metrics.get_meter("botsession", _version())
        try:
            self._duration = meter.create_histogram(
                CONNECT_DURATION,
                unit="s",
                description="Time a proxy hop took to answer while connecting through a route",
                explicit_bucket_boundaries_advisory=_BUCKETS,
            )
        except TypeError:  # pragma: no cover - opentelemetry-api before 1.23
            self._duration = meter.create_histogram(CONNECT_DURATION, unit="s")
        self._switches = meter.create_counter(
            ROUTE_SWITCHES,
            unit="{switch}",
            description="Changes of the route new connections go through first",
        )
        self._tracer = trace.get_tracer("botsession", _version())
        self._trace = trace

    def attempt_ended(self, attempt: Attempt, route: ProxyRoute) -> None:
        """Record a finished attempt: a duration per hop, a span with a child per hop."""
        failed_hop = attempt.failed_hop(len(route))
        answered = len(route) if failed_hop is None else failed_hop
        completed = list(attempt.hop_seconds[:answered])
        attempt_attributes = {ROUTE_INDEX: attempt.index}
        for number, seconds in enumerate(completed):
            self._duration.record(seconds, _hop_attributes(attempt.index, number, route))
        stuck = max(0.0, attempt.elapsed - sum(completed))
        if failed_hop is not None and attempt.error_type is not None:
            attributes = _hop_attributes(attempt.index, failed_hop, route)
            attributes[ERROR_TYPE] = attempt.error_type
            self._duration.record(stuck, attributes)
        self._spans(
            attempt,
            route=route,
            completed=completed,
            failed_hop=failed_hop,
            stuck=stuck,
            attributes=attempt_attributes,
        )

    def switched(self, previous: int, index: int, reason: str) -> None:
        self._switches.add(
            1, {ROUTE_INDEX: index, PREVIOUS_ROUTE_INDEX: previous, SWITCH_REASON: reason}
        )

    def _spans(
        self,
        attempt: Attempt,
        *,
        route: ProxyRoute,
        completed: list[float],
        failed_hop: int | None,
        stuck: float,
        attributes: dict[str, Any],
    ) -> None:
        trace = self._trace
        start = attempt.started_ns
        end = start + int(attempt.elapsed * 1e9)
        span_attributes: dict[str, Any] = {
            **attributes,
            "botsession.route.hops": len(route),
            "server.address": attempt.target_host,
            "server.port": attempt.target_port,
        }
        if attempt.health_check:
            span_attributes[HEALTH_CHECK] = True
        if attempt.hedged:
            span_attributes[HEDGED] = True
        if attempt.error_type is not None:
            span_attributes[ERROR_TYPE] = attempt.error_type
        # The current context's span is the parent: the request's, if it is traced; none for a
        # health check, which runs in a context of its own (see the router).
        span = self._tracer.start_span(CONNECT_SPAN, attributes=span_attributes, start_time=start)
        if attempt.error_type not in (None, CANCELLED):
            span.set_status(trace.Status(trace.StatusCode.ERROR, attempt.description))
        parent = trace.set_span_in_context(span)
        offset = start
        for number, seconds in enumerate(completed):
            hop_end = offset + int(seconds * 1e9)
            self._hop_span(
                parent,
                route=route,
                route_index=attempt.index,
                number=number,
                start=offset,
                end=hop_end,
                failed=None,
            )
            offset = hop_end
        if failed_hop is not None and attempt.error_type is not None:
            hop_end = min(end, offset + int(stuck * 1e9))
            self._hop_span(
                parent,
                route=route,
                route_index=attempt.index,
                number=failed_hop,
                start=offset,
                end=hop_end,
                failed=attempt,
            )
        span.end(end_time=end)

    def _hop_span(
        self,
        parent: Any,
        *,
        route: ProxyRoute,
        route_index: int,
        number: int,
        start: int,
        end: int,
        failed: Attempt | None,
    ) -> None:
        trace = self._trace
        hop = route[number]
        attributes: dict[str, Any] = {
            **_hop_attributes(route_index, number, route),
            "server.address": hop.host,
            "server.port": hop.port,
        }
        if failed is not None and failed.error_type is not None:
            attributes[ERROR_TYPE] = failed.error_type
        span = self._tracer.start_span(
            HOP_SPAN, context=parent, attributes=attributes, start_time=start
        )
        if failed is not None and failed.error_type not in (None, CANCELLED):
            span.set_status(trace.Status(trace.StatusCode.ERROR, failed.description))
        span.end(end_time=max(start, end))


def _hop_attributes(route_index: int, number: int, route: ProxyRoute) -> dict[str, Any]:
    return {ROUTE_INDEX: route_index, HOP_INDEX: number, PROXY_SCHEME: route[number].scheme}


class Attempt:
    """One attempt to connect through a route, as the router saw it: enough to report it."""

    __slots__ = (
        "description",
        "elapsed",
        "error_hop",
        "error_type",
        "has_socket",
        "health_check",
        "hedged",
        "hop_seconds",
        "index",
        "started",
        "started_ns",
        "target_host",
        "target_port",
    )

    def __init__(
        self, index: int, host: str, port: int, *, hedged: bool = False, health_check: bool = False
    ) -> None:
        self.index = index
        self.target_host = host
        self.target_port = port
        self.hedged = hedged
        self.health_check = health_check
        self.hop_seconds: list[float] = []
        """Filled by the tunnel as each hop answers."""
        self.started = time.perf_counter()
        self.started_ns = time.time_ns()
        self.elapsed = 0.0
        self.error_type: str | None = None
        self.error_hop: int | None = None
        """The 0-based hop a ``ProxyHopError`` blamed."""
        self.description = ""
        self.has_socket = False
        """Whether it holds one of the router's sockets (it may have to wait for one)."""

    def begin(self) -> None:
        """The attempt has its socket (it may have waited for one): count from now."""
        self.has_socket = True
        self.started = time.perf_counter()
        self.started_ns = time.time_ns()

    def end(self) -> None:
        self.elapsed = time.perf_counter() - self.started

    @property
    def running_for(self) -> float:
        return time.perf_counter() - self.started

    def failed_hop(self, hops: int) -> int | None:
        """The 0-based hop a failure (or cancellation) is put on: the hop the error blamed, or
        the first that had not answered. None without a failure, and for a failure after every
        hop answered (TLS with the server), which only the connect span shows."""
        if self.error_type is None:
            return None
        answered = len(self.hop_seconds)
        if self.error_hop is not None and self.error_hop < answered:
            return None  # the blamed hop had answered: what failed came after the last hop
        hop = answered if self.error_hop is None else self.error_hop
        return hop if hop < hops else None


def safe_description(text: str, route: ProxyRoute) -> str:
    """``text``, or nothing when it mentions a user name or password of ``route``."""
    for hop in route:
        for secret in (hop.username, hop.secret()):
            if secret and secret in text:
                return ""
    return text


__all__ = ["Attempt", "Telemetry", "current", "safe_description"]
