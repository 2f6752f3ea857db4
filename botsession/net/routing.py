"""Which route a connection goes through: hedged connects, fallback, and routes that heal.

Connecting starts with the active route. When it fails, the next route is tried at once; when
it has not connected within ``hedge_after`` seconds, the next route is tried *as well*, and the
first tunnel that is ready wins (the others are closed). All of this happens in the connect
phase, before a request was sent on any tunnel, so no Bot API request is ever sent twice.

A route that failed (or lost a race after ``hedge_after``) is checked in the background by
opening a tunnel through it to the Bot API host of the last connect — no request is sent —
every ``retry_primary_after`` seconds (6 s by default; with a longer or no
``retry_primary_after``, from 6 s at doubling intervals), counted from when the last connect
through it began (a silent route's hedge delay is not added), each wait shortened by up to a
fifth at random (so that checks do not fall into step with a proxy that flaps on a schedule). Every
failure starts again from the first interval: a route that flaps is used again as soon as a
check finds it working, while one that stays down costs one connection per interval (about 11
a minute by default). When a check succeeds the route is healthy again and, if it
comes before the active one (or the active one failed), traffic returns to it. The checks are
tasks of the running event loop, started on the first failure and stopped by ``close()`` (the
connector's close calls it).

A router with a ``limit`` holds at most that many sockets to proxies at once: open tunnels
(until their connection closes), attempts to connect, background checks. An attempt that finds
none free first has an idle connection closed (the connector's ``reclaim``), else gives up the
oldest attempt that has had its full ``hedge_after`` (another route is being tried for it, so
it would be marked failed if that one wins), and waits; a check that finds none free is skipped.

``close()`` (``stop()``) ends connecting too: attempts in progress are given up and their
requests fail at once with ``SessionClosedError``; nothing more is dialled for them.

``route_status()`` tells, for each route, its state — ``active`` (new connections go through
it first), ``standby`` (healthy or not tried, ready to take over) or ``failed`` (its last
attempt failed; checked in the background) — the last error, when the state last changed and
how long each hop took to answer the last time.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from .. import telemetry
from ..errors import AllRoutesFailedError, ProxyHopError, SessionClosedError, route_name
from ..redaction import Secrets, scrub
from .tunnel import Tunnel, open_tunnel

if TYPE_CHECKING:
    import ssl

    from ..config_schema import BotSessionConfig, ProxyRoute, TlsSettings

logger = logging.getLogger("botsession")

DNS_CACHE_SECONDS = 3600
"""aiogram's DNS cache lifetime (its workaround for aiogram#1500), kept on proxy connectors too."""
FIRST_CHECK_AFTER = 6.0
"""Seconds from a route's failure to its first background check (or less, when the longest
interval between checks is shorter). A check sooner than this would cost a proxy that flaps
every few seconds a connection in nearly every outage (the connect that found it dead costs
one already), where a check every 6 s costs about 11 a minute while a route stays down."""
LONGEST_CHECK_INTERVAL = 60.0
"""Checks of a failed route are at most this far apart when ``retry_primary_after`` is None
(traffic then does not return by itself; the checks keep ``route_status`` true)."""
CHECK_JITTER = 0.2
"""Each wait before a check is shortened by up to this fraction of it, at random."""

DOUBT_FACTOR = 5.0
DOUBT_FLOOR = 0.05
"""A route is in doubt when a connect through it has waited ``DOUBT_FACTOR`` times as long as
its last connect took, and at least ``DOUBT_FLOOR`` seconds, but never later than the hedge
delay (see ``Router._in_doubt``). Through a proxy far away the factor decides; the floor only
keeps a route that connects in a millisecond (one on the same network) from being doubted by
every stall of a busy event loop. Doubt only reorders new connects: it fails nothing."""

SOCKET_WAIT_STEP = 0.1
"""While an attempt waits for a free socket, how often it asks again for an idle connection to
be closed or a hedged attempt to be given up (seconds)."""

RouteState = Literal["active", "standby", "failed"]
"""``active``: new connections go through this route first. ``standby``: healthy (or not tried
yet) and ready to take over. ``failed``: the last attempt through it failed; it is checked in
the background until it works again."""
SwitchReason = Literal["failed", "hedged", "recovered"]


@dataclass(frozen=True)
class ConnectorSpec:
    """Everything a connector is built from, computed from the configuration without I/O."""

    routes: tuple[ProxyRoute, ...]
    """The primary route, then the fallbacks; empty for direct connections."""
    limit: int
    connect_timeout: float
    tls: TlsSettings
    retry_primary_after: float | None = None
    hedge_after: float | None = None
    ttl_dns_cache: int = DNS_CACHE_SECONDS

    @classmethod
    def from_config(cls, config: BotSessionConfig) -> ConnectorSpec:
        return cls(
            routes=config.routes,
            limit=config.limit,
            connect_timeout=config.connect_timeout,
            tls=config.ssl,
            retry_primary_after=config.fallback_retry_primary_after,
            hedge_after=config.fallback_hedge_after,
        )


@dataclass(frozen=True)
class RouteStatus:
    """One route as the router sees it now. Nothing in it shows a password."""

    index: int
    """The route's place, from 0: 0 is ``proxy``, 1 is ``fallback[0]``, …"""
    name: str
    """``proxy``, ``fallback[0]``, … as in the configuration."""
    route: str
    """The hops, passwords masked: ``socks5://u:***@10.0.0.1:1080 → http://10.0.0.2:3128``."""
    state: RouteState
    last_error: str | None
    """The last failure through this route (passwords masked), kept after it recovers."""
    changed_at: datetime
    """When ``state`` last changed (UTC; the router's creation for a route never changed)."""
    hop_seconds: tuple[float | None, ...]
    """How long each hop took to answer at the last attempt that reached it; None: never."""

    def as_dict(self) -> dict[str, Any]:
        """The status as JSON-ready data."""
        return {
            "index": self.index,
            "name": self.name,
            "route": self.route,
            "state": self.state,
            "last_error": self.last_error,
            "changed_at": self.changed_at.isoformat(),
            "hop_seconds": list(self.hop_seconds),
        }

    def __str__(self) -> str:
        hops = ", ".join("-" if s is None else f"{s * 1000:.0f} ms" for s in self.hop_seconds)
        error = f"; last error: {self.last_error}" if self.last_error else ""
        return (
            f"route {self.name} {self.state} since "
            f"{self.changed_at:%Y-%m-%d %H:%M:%S} UTC: {self.route}; hops {hops}{error}"
        )


@dataclass
class _Health:
    """What the router knows about one route."""

    hops: int
    state: RouteState
    changed_at: float = field(default_factory=time.time)
    failed: bool = False
    error: str | None = None
    hop_seconds: list[float | None] = field(default_factory=list)
    interval: float = 0.0
    """Seconds from the start of the last failed connect through it to its next background
    check (before jitter); doubles after each failed check (up to the longest interval)."""
    dialled_at: float = float("-inf")
    """When (``time.perf_counter()``) the last failed connect through it began: the next check
    comes ``interval`` after that, so a connect that failed by waiting (a silent route) does
    not add its wait to the time until the route is tried again."""
    worked_at: float = float("-inf")
    """When (``time.perf_counter()``, the attempts' clock) a connect through it last worked."""
    connect_seconds: float | None = None
    """How long the last connect through it that carried a request took (None: none yet)."""
    connecting: set[telemetry.Attempt] = field(default_factory=set)
    """Its attempts in progress (holding a socket)."""

    def __post_init__(self) -> None:
        self.hop_seconds = [None] * self.hops


@dataclass(frozen=True)
class _Target:
    """Where the last connect went: what a background check connects to."""

    host: str
    port: int
    ssl: ssl.SSLContext | None
    server_hostname: str | None
    pin: Callable[[asyncio.Transport], None] | None = None
    """Checks the server's certificate after TLS (a pinned fingerprint)."""


class Router:
    """The routes of a session (primary first), which one is active, and connecting through
    them; shared by all of a session's connections.

    ``hedge_after``: seconds after which a connect that is still waiting for its route starts
    on the next route as well (None: only after a failure). ``retry_primary_after``: the longest
    interval between background checks of a failed route, and so the longest a route that
    works again stays unused (None: traffic stays on the route in use; checks still run).
    ``limit``: the most sockets to proxies held at once (see the module).
    """

    def __init__(
        self,
        routes: tuple[ProxyRoute, ...],
        *,
        connect_timeout: float,
        retry_primary_after: float | None = None,
        hedge_after: float | None = None,
        limit: int | None = None,
    ) -> None:
        if not routes:
            raise ValueError("a router needs at least one route")
        self.routes = routes
        self.connect_timeout = connect_timeout
        self.retry_primary_after = retry_primary_after
        self.hedge_after = hedge_after
        self.active = 0
        self.switches = 0
        """How many times the active route changed (connectors retire connections on a change)."""
        self._health = [
            _Health(len(route), "active" if index == 0 else "standby")
            for index, route in enumerate(routes)
        ]
        self._secrets = Secrets(
            form for route in routes for hop in route for form in hop.secret_forms()
        )
        self._target: _Target | None = None
        self._checks: dict[int, asyncio.Task[None]] = {}
        self._stopped = False
        self.sockets = Sockets(limit)
        """The proxy sockets this router may hold at once (``limit``; None: no bound)."""
        self._races: set[_Race] = set()

    @property
    def route(self) -> ProxyRoute:
        """The route new connections go through first."""
        return self.routes[self.active]

    def __repr__(self) -> str:
        return f"Router({self.route!r}, {len(self.routes)} routes)"

    # --- connecting ---------------------------------------------------------------------

    async def connect(
        self,
        host: str,
        port: int,
        *,
        ssl: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        pin: Callable[[asyncio.Transport], None] | None = None,
    ) -> Tunnel:
        """A tunnel to ``host:port`` through the first route that is ready (see the module);
        ``pin`` checks the server's certificate after TLS, as part of connecting."""
        _, tunnel = await self.open(host, port, ssl=ssl, server_hostname=server_hostname, pin=pin)
        return tunnel

    async def open(
        self,
        host: str,
        port: int,
        *,
        ssl: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        pin: Callable[[asyncio.Transport], None] | None = None,
    ) -> tuple[int, Tunnel]:
        """``connect``, also telling which route (its index) the tunnel goes through."""
        target = _Target(host, port, ssl, server_hostname, pin)
        self._target = target
        if self._stopped:
            self._resume()
        race = _Race(self, target)
        self._races.add(race)
        try:
            return await self._run(race)
        finally:
            self._races.discard(race)

    def order(self) -> list[int]:
        """Route indexes to try, in order: the active one, then the others that have not failed,
        then the failed ones, each group by priority — but a route in doubt (see ``_in_doubt``)
        comes after the healthy ones."""
        others = [index for index in range(len(self.routes)) if index != self.active]
        healthy = [index for index in others if not self._health[index].failed]
        failed = [index for index in others if self._health[index].failed]
        ranked = [self.active, *healthy]
        doubted = [index for index in ranked if self._in_doubt(index)]
        if len(doubted) == len(ranked):
            return [*ranked, *failed]
        return [*(index for index in ranked if index not in doubted), *doubted, *failed]

    def _in_doubt(self, index: int) -> bool:
        """Whether a connect through route ``index`` has been waiting much longer than that
        route took to connect last time (``DOUBT_FACTOR`` times, at least ``DOUBT_FLOOR`` s, at
        most the hedge delay): the route has probably gone silent, and a new connect starts
        with the next route rather than pile one more connection onto it (the waiting one
        decides: it fails the route, or it works and the doubt is gone)."""
        health = self._health[index]
        if not health.connecting or health.connect_seconds is None:
            return False
        longest = self.connect_timeout if self.hedge_after is None else self.hedge_after
        doubt_after = min(longest, max(DOUBT_FLOOR, DOUBT_FACTOR * health.connect_seconds))
        return any(attempt.running_for >= doubt_after for attempt in health.connecting)

    async def _run(self, race: _Race) -> tuple[int, Tunnel]:
        closed = False
        try:
            while race.running and race.winner is None:
                waited: set[asyncio.Future[Any]] = {*race.running, race.closing}
                done, _ = await asyncio.wait(
                    waited,
                    timeout=race.until_hedge(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if race.closing.done():
                    closed = True
                    break
                race.collect(done)
        except BaseException:
            await race.abandon(None)
            raise
        if closed:
            await race.abandon(None)
            raise SessionClosedError
        if race.winner is None:
            failures = race.failures
            if len(self.routes) == 1:
                raise failures[0][1]
            numbered = [(index + 1, error) for index, error in failures]
            raise AllRoutesFailedError(self.routes, numbered) from failures[-1][1]
        attempt, tunnel = race.winner
        lost = self._lost(race.running, attempt.index)
        await race.abandon(tunnel)
        self._won(attempt, "hedged" if self.active in lost else "failed")
        return attempt.index, tunnel

    async def _attempt(
        self,
        attempt: telemetry.Attempt,
        target: _Target,
        timeout: float | None = None,
        *,
        has_socket: bool = False,
    ) -> Tunnel:
        """One tunnel through route ``attempt.index`` within ``timeout`` (default: the connect
        timeout), reported to telemetry when it ends. It first takes one of the ``limit``
        sockets (unless ``has_socket``), which the tunnel gives back when it is closed."""
        route = self.routes[attempt.index]
        limit = self.connect_timeout if timeout is None else timeout
        if not has_socket:
            await self.sockets.take(self._shed, limit)
        attempt.begin()
        connecting = self._health[attempt.index].connecting
        connecting.add(attempt)
        try:
            return await self._open(attempt, route, target, limit)
        finally:
            connecting.discard(attempt)

    async def _open(
        self, attempt: telemetry.Attempt, route: ProxyRoute, target: _Target, limit: float
    ) -> Tunnel:
        recorder = telemetry.current()
        try:
            tunnel = await open_tunnel(
                route,
                target.host,
                target.port,
                timeout=limit,
                ssl=target.ssl,
                server_hostname=target.server_hostname,
                hop_seconds=attempt.hop_seconds,
                pin=target.pin,
            )
        except ProxyHopError as error:
            self.sockets.give_back()
            attempt.end()
            if recorder is not None:
                attempt.error_type = error.reason
                attempt.error_hop = error.hop_number - 1
                attempt.description = telemetry.safe_description(error.detail, route)
                recorder.attempt_ended(attempt, route)
            raise
        except asyncio.CancelledError:
            self.sockets.give_back()
            attempt.end()
            if recorder is not None and not attempt.health_check:  # a check stopped by close()
                attempt.error_type = telemetry.CANCELLED
                recorder.attempt_ended(attempt, route)
            raise
        tunnel.on_release(self.sockets.give_back)
        attempt.end()
        if recorder is not None:
            recorder.attempt_ended(attempt, route)
        return tunnel

    def _shed(self) -> None:
        """Give up the attempt that has waited longest beyond ``hedge_after`` (another route
        is tried for its request: it would be marked failed if that one wins), to free its
        socket for an attempt that needs one."""
        hedge = self.hedge_after
        if hedge is None:
            return
        candidates = [
            (attempt.running_for, race, task)
            for race in self._races
            for task, attempt in race.running.items()
            if attempt.has_socket and attempt.running_for >= hedge and task not in race.shed
        ]
        if not candidates:
            return
        _, race, task = max(candidates, key=lambda candidate: candidate[0])
        race.shed.add(task)
        task.cancel()

    # --- what the outcome of a connect says about the routes ---------------------------

    def _won(self, attempt: telemetry.Attempt, reason: SwitchReason) -> None:
        """Route ``attempt.index`` gave the tunnel; it becomes active if the active one failed."""
        index = attempt.index
        self._route_worked(index, attempt.hop_seconds)
        self._health[index].connect_seconds = attempt.elapsed
        if index != self.active and self._health[self.active].failed:
            self._switch(index, reason)

    def _lost(
        self, running: dict[asyncio.Task[Tunnel], telemetry.Attempt], winner: int
    ) -> set[int]:
        """Routes still connecting when route ``winner`` was ready: those that had their full
        ``hedge_after`` have failed (they would lose every race). Returns their indexes."""
        hedge = self.hedge_after
        lost = set()
        for attempt in running.values():
            self._note_hops(attempt.index, attempt.hop_seconds)
            waited = attempt.running_for
            if hedge is None or waited < hedge:
                continue
            if attempt.started < self._health[attempt.index].worked_at:
                continue  # the route worked (a check, another connect) since this one began
            route = self.routes[attempt.index]
            answered = len(attempt.hop_seconds)
            if answered < len(route):
                hop = route[answered]
                where = f"hop {answered + 1} of {len(route)} ({hop.label()}) had not answered"
            else:
                where = f"the TLS handshake with {_address(attempt)} had not finished"
            text = (
                f"no tunnel after {waited:.1f} s ({where}); route {route_name(winner)} was ready "
                f"first (fallback_hedge_after: {hedge:g} s)"
            )
            self._route_failed(attempt.index, text, None, attempt.started)
            lost.add(attempt.index)
        return lost

    def _route_failed(
        self, index: int, text: str, hop_seconds: list[float] | None, began: float
    ) -> None:
        """Route ``index`` failed a connect that began at ``began`` (``perf_counter``)."""
        health = self._health[index]
        if hop_seconds is not None:
            self._note_hops(index, hop_seconds)
        health.error = text
        if not health.failed:
            health.failed = True
            health.interval = min(FIRST_CHECK_AFTER, self._longest_interval)
            health.dialled_at = began
        self._refresh()
        self._schedule_check(index)

    def _route_worked(self, index: int, hop_seconds: list[float] | None) -> None:
        health = self._health[index]
        if hop_seconds is not None:
            self._note_hops(index, hop_seconds)
        health.failed = False
        health.worked_at = time.perf_counter()
        self._refresh()

    def _note_hops(self, index: int, hop_seconds: list[float]) -> None:
        health = self._health[index]
        for number, seconds in enumerate(hop_seconds[: health.hops]):
            health.hop_seconds[number] = seconds

    def _switch(self, index: int, reason: SwitchReason) -> None:
        left = self.active
        self.active = index
        self.switches += 1
        self._refresh()
        if reason == "recovered" and index < left:
            logger.warning(
                "route %s (%s) works again; switched back to it",
                route_name(index),
                self.routes[index],
            )
        else:
            why = self._health[left].error or "not tried"
            logger.warning(
                "route %s (%s) failed: %s; switched to route %s (%s)",
                route_name(left),
                self.routes[left],
                why,
                route_name(index),
                self.routes[index],
            )
        recorder = telemetry.current()
        if recorder is not None:
            recorder.switched(left, index, reason)

    def _refresh(self) -> None:
        """Bring each route's state (and when it changed) up to date."""
        now = time.time()
        for index, health in enumerate(self._health):
            state: RouteState = (
                "failed" if health.failed else "active" if index == self.active else "standby"
            )
            if state != health.state:
                health.state = state
                health.changed_at = now

    def _text(self, error: BaseException) -> str:
        return scrub(str(error), self._secrets)

    # --- background checks --------------------------------------------------------------

    @property
    def _longest_interval(self) -> float:
        if self.retry_primary_after is None:
            return LONGEST_CHECK_INTERVAL
        return self.retry_primary_after

    def _schedule_check(self, index: int) -> None:
        if len(self.routes) == 1 or self._stopped or self._target is None:
            return
        loop = asyncio.get_running_loop()
        task = self._checks.get(index)
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        health = self._health[index]
        since = time.perf_counter() - health.dialled_at
        wait = max(0.0, jittered(health.interval) - since)
        # A fresh context: a check belongs to the session, not to the request (its per-call
        # timeouts, its trace) that found the failure.
        self._checks[index] = contextvars.Context().run(loop.create_task, self._check(index, wait))

    async def _check(self, index: int, wait: float) -> None:
        """After ``wait`` seconds, open a tunnel through route ``index`` (no request) and
        close it; on success the route is healthy again, else the next check is scheduled."""
        await asyncio.sleep(wait)
        health, target = self._health[index], self._target
        if not health.failed or target is None:
            return  # it worked meanwhile, for a real connection
        if not self.sockets.try_take():
            # Every socket the limit allows is in use: this check waits for its next turn, and
            # an idle connection is closed so that there is one then.
            if self.sockets.reclaim is not None:
                self.sockets.reclaim()
            logger.debug(
                "route %s not checked: all %s sockets in use", route_name(index), self.sockets.limit
            )
            if self._checks.get(index) is asyncio.current_task():
                del self._checks[index]
            health.dialled_at = time.perf_counter()  # a whole interval until the next turn
            self._schedule_check(index)
            return
        attempt = telemetry.Attempt(index, target.host, target.port, health_check=True)
        # With hedging, a route must be ready within the hedge delay to count as healthy (it
        # would lose every race otherwise): a silent route costs a check no more than that.
        hedge = self.hedge_after
        timeout = self.connect_timeout if hedge is None else min(hedge, self.connect_timeout)
        failure: str | None = None
        try:
            tunnel = await self._attempt(attempt, target, timeout, has_socket=True)
        except ProxyHopError as error:
            failure = f"background check: {self._text(error)}"
        else:
            tunnel.close()
        self._note_hops(index, attempt.hop_seconds)
        if self._checks.get(index) is asyncio.current_task():
            del self._checks[index]
        if failure is not None:
            health.error = failure
            health.dialled_at = attempt.started
            health.interval = min(self._longest_interval, health.interval * 2)
            logger.debug("route %s still fails: %s", route_name(index), failure)
            self._schedule_check(index)
            return
        logger.debug("route %s works again (background check)", route_name(index))
        self._route_worked(index, None)
        active_failed = self._health[self.active].failed
        returns = self.retry_primary_after is not None and index < self.active
        if index != self.active and (active_failed or returns):
            self._switch(index, "recovered")

    def _resume(self) -> None:
        """Checks again after ``close()``, when the session is used again."""
        self._stopped = False
        for index, health in enumerate(self._health):
            if health.failed:
                self._schedule_check(index)

    def stop(self) -> None:
        """Cancel the background checks and give up the connects in progress, whose requests
        fail with ``SessionClosedError`` (at once; ``close`` also waits for the checks)."""
        self._stopped = True
        for task in self._checks.values():
            if not task.done() and not task.get_loop().is_closed():
                task.cancel()
        for race in self._races:
            race.close()

    async def close(self) -> None:
        """Stop the background checks and wait until they have ended (their sockets closed)."""
        self.stop()
        loop = asyncio.get_running_loop()
        tasks = [task for task in self._checks.values() if task.get_loop() is loop]
        self._checks.clear()
        if tasks:
            await asyncio.wait(tasks)

    # --- status -------------------------------------------------------------------------

    def route_status(self) -> tuple[RouteStatus, ...]:
        """Each route's state, last error, when its state changed and its hops' times."""
        return tuple(
            RouteStatus(
                index=index,
                name=route_name(index),
                route=str(route),
                state=health.state,
                last_error=health.error,
                changed_at=datetime.fromtimestamp(health.changed_at, UTC),
                hop_seconds=tuple(health.hop_seconds),
            )
            for index, (route, health) in enumerate(zip(self.routes, self._health, strict=True))
        )


class _Race:
    """One connect through several routes: who runs, who failed, who won."""

    def __init__(self, router: Router, target: _Target) -> None:
        self.router = router
        self.target = target
        self.loop = asyncio.get_running_loop()
        self.waiting = router.order()
        self.running: dict[asyncio.Task[Tunnel], telemetry.Attempt] = {}
        self.failures: list[tuple[int, ProxyHopError]] = []
        self.winner: tuple[telemetry.Attempt, Tunnel] | None = None
        self.newest: telemetry.Attempt
        """The attempt started last: the next route starts ``hedge_after`` after it began."""
        self.closing: asyncio.Future[None] = self.loop.create_future()
        """Done when the router is closed while this connect runs."""
        self.shed: set[asyncio.Task[Tunnel]] = set()
        """Attempts given up to free their socket for another (see ``Router._shed``)."""
        self.start(hedged=False)

    def start(self, *, hedged: bool) -> None:
        """Start connecting through the next route waiting."""
        index = self.waiting.pop(0)
        attempt = telemetry.Attempt(index, self.target.host, self.target.port, hedged=hedged)
        task = self.loop.create_task(self.router._attempt(attempt, self.target))
        self.running[task] = attempt
        self.newest = attempt

    def close(self) -> None:
        if not self.closing.done() and not self.loop.is_closed():
            self.closing.set_result(None)

    def until_hedge(self) -> float | None:
        """Seconds until the next route should start as well; None: not before a failure.

        Counted on the attempt's own clock, from when it began (got its turn and its socket), as
        ``Router._lost`` counts: on a busy machine an attempt's first step can come late, and a
        route hedged before it had its full delay could not be failed when it loses."""
        hedge = self.router.hedge_after
        if not self.waiting or hedge is None:
            return None
        return max(0.0, hedge - self.newest.running_for)

    def collect(self, done: set[asyncio.Future[Any]]) -> None:
        """Take the attempts that ended; with none, the time to hedge has come."""
        ended = [task for task in self.running if task in done]
        if not ended:  # the wait for the hedge delay ended
            if self.until_hedge() == 0:  # the routes tried so far are slow: the next one as well
                self.start(hedged=True)
            return  # the newest attempt began after the wait did: its delay is not over yet
        for task in sorted(ended, key=lambda task: self.running[task].index):
            attempt = self.running.pop(task)
            if task.cancelled():  # given up for its socket (Router._shed)
                self._failed(attempt, self._given_up(attempt))
                continue
            error = task.exception()
            if error is None:
                if self.winner is None:
                    self.winner = (attempt, task.result())
                else:  # ready at the same moment: only one is used
                    task.result().close()
            elif isinstance(error, ProxyHopError):
                self._failed(attempt, error)
            else:  # pragma: no cover - open_tunnel raises nothing else
                raise error

    def _failed(self, attempt: telemetry.Attempt, error: ProxyHopError) -> None:
        # Nothing was sent yet: trying the next route cannot repeat a request.
        self.failures.append((attempt.index, error))
        text = self.router._text(error)
        self.router._route_failed(attempt.index, text, attempt.hop_seconds, attempt.started)
        if self.waiting and self.winner is None:
            self.start(hedged=False)

    def _given_up(self, attempt: telemetry.Attempt) -> ProxyHopError:
        route = self.router.routes[attempt.index]
        answered = min(len(attempt.hop_seconds), len(route) - 1)
        detail = (
            f"no tunnel after {attempt.running_for:.1f} s (fallback_hedge_after: "
            f"{self.router.hedge_after:g} s); given up so that the session holds no more than "
            f"its limit of {self.router.sockets.limit} proxy connections"
        )
        hop = route[answered]
        return ProxyHopError(answered + 1, len(route), hop.label(), "timeout", detail)

    async def abandon(self, winner: Tunnel | None) -> None:
        """Cancel the attempts still running and wait for them to end (each closes its socket
        as it ends); a tunnel one of them finished anyway is closed. Cancelled meanwhile, the
        winner is closed too."""
        losers = list(self.running)
        for task in losers:
            task.cancel()
            task.add_done_callback(_close_unclaimed)
        if not losers:
            return
        try:
            await asyncio.wait(losers)
        except BaseException:
            if winner is not None:
                winner.close()
            raise


class Sockets:
    """The sockets to proxies a router may hold at once: ``limit`` of them, or any number
    (None). Attempts take one, waiting when none is free; a tunnel gives its one back when
    its connection closes.

    Waiting is first come, first served; meanwhile ``reclaim`` (set by the connector: close an
    idle connection) and the router's shedding are asked to free one every
    ``SOCKET_WAIT_STEP``. Tolerates the event loop changing between uses (a session may be used
    from several loops one after the other).
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.held = 0
        self.reclaim: Callable[[], bool] | None = None
        """Close an idle connection through a route, if there is one (the connector's)."""
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    def try_take(self) -> bool:
        """Take a socket if one is free and nobody waits for one."""
        self._follow_the_loop()
        if self._waiting or (self.limit is not None and self.held >= self.limit):
            return False
        self.held += 1
        return True

    def _follow_the_loop(self) -> None:
        # The sockets of an event loop that has been closed are gone with it, whether or not
        # their connections said so before (a session used again from a new loop).
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and self._loop.is_closed():
                self.held = 0
                self._waiting.clear()
            self._loop = loop

    async def take(self, shed: Callable[[], None], patience: float) -> None:
        """Take a socket, waiting for one when none is free. After ``patience`` seconds
        (the connect timeout: nothing holds a socket longer without being shed or reclaimed)
        it is taken anyway and the overrun logged, rather than a request waiting forever."""
        if self.try_take():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        deadline = time.monotonic() + patience
        try:
            while not waiter.done():
                if not (self.reclaim is not None and self.reclaim()):
                    shed()
                left = deadline - time.monotonic()
                if left <= 0:
                    self._waiting.remove(waiter)
                    self.held += 1
                    logger.warning(
                        "all %s proxy sockets (limit) stayed in use for %g s; one more opened",
                        self.limit,
                        patience,
                    )
                    return
                await asyncio.wait({waiter}, timeout=min(SOCKET_WAIT_STEP, left))
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give_back()  # it was handed over as this attempt was given up
            elif waiter in self._waiting:
                self._waiting.remove(waiter)
            raise

    def give_back(self) -> None:
        """Return a socket: to the first attempt waiting, else to the free ones."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(None)  # the socket passes on: held stays the same
                return
        self.held -= 1


def _close_unclaimed(task: asyncio.Task[Tunnel]) -> None:
    if not task.cancelled() and task.exception() is None:
        task.result().close()


def _address(attempt: telemetry.Attempt) -> str:
    host = attempt.target_host
    return f"[{host}]:{attempt.target_port}" if ":" in host else f"{host}:{attempt.target_port}"


def jittered(interval: float) -> float:
    """``interval`` shortened by up to ``CHECK_JITTER`` of it, at random: never longer, so a
    route that works again still stays unused at most ``retry_primary_after``."""
    return interval * (1 - CHECK_JITTER * random.random())  # noqa: S311 - timing, not secrecy
