"""MTProto clients through the real daemons (issue #20): danted, microsocks, tinyproxy, ssh -D and
stunnel in front of tinyproxy, alone, chained and as a fallback.

A real client connects to the stand-in data center (tests/mtproto_dc.py) through a connection
botsession built from a configuration; the stand-in records the first transport frame and then
stays silent, so the client waits for an answer until it is given up and disconnected. The
daemons' logs of the connections they made prove which hops carried the frame.

Each client is a driver (Telethon's ``TelegramClient``, kurigram's ``Client``): a new client is
one more entry in ``DRIVERS``, and every test runs for each.
Under CI (any non-empty CI but 0/false) a missing daemon fails these tests; elsewhere they are
skipped with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from pyrogram.session import Auth
from telethon import TelegramClient
from telethon.sessions import MemorySession

import botsession
from botsession.kurigram import kurigram_connection
from botsession.net.routing import RouteStatus
from botsession.telethon import telethon_connection

from ..failover_support import until
from ..kurigram_support import client_for
from ..mtproto_dc import MTProtoDC
from ..servers import BackgroundLoop
from ..support import LOOPBACK, SENTINEL, free_port, nothing_left_open
from .daemons import RunningProxy
from .tls_daemons import TlsProxy

pytestmark = pytest.mark.daemons

WAIT = 15.0
"""Seconds a step may take before the test gives up on it (a bound, not a measurement)."""


# --- clients ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened to one client's connect through the route."""

    error: BaseException | None
    """What ``connect()`` raised before the DC had a frame (None: it was still waiting for the
    DC's answer when it was given up)."""
    statuses: list[RouteStatus]
    """``botsession.route_status(client)`` while connected, before ``disconnect()``."""
    sockets_held: int
    """The router's sockets to proxies still held after ``disconnect()``."""
    tasks_left: list[asyncio.Task[Any]]
    """The event loop's tasks (this one aside) still running after ``disconnect()``: the
    router's background checks, the client's own."""


class ClientDriver(Protocol):
    """Connects one kind of MTProto client through a connection built from a configuration."""

    codec: str
    """The transport codec of the client's first frame, as the stand-in DC tells it."""

    async def connect(self, dc: MTProtoDC, config: Mapping[str, Any]) -> Outcome:
        """Connect a client to ``dc`` through botsession's connection for ``config``, until
        the DC has the first frame (or the connect failed), then give the connect up and
        ``disconnect()``."""
        ...


class TelethonDriver:
    """Telethon's ``TelegramClient`` with ``connection=telethon_connection(config)``, its
    default codec (TcpFull), the stand-in DC set as DC 2, no retries."""

    codec = "full"

    async def connect(self, dc: MTProtoDC, config: Mapping[str, Any]) -> Outcome:
        connection = telethon_connection(**config)
        client = TelegramClient(
            MemorySession(), 1, "x", connection=connection, connection_retries=0, timeout=5
        )
        client.session.set_dc(2, LOOPBACK, dc.port)
        try:
            error = await _until_first_frame(client.connect(), dc)
            statuses = botsession.route_status(client)
        finally:
            await client.disconnect()
        assert connection.router is not None
        return Outcome(error, statuses, connection.router.sockets.held, _tasks_left())


class KurigramDriver:
    """kurigram's ``Client`` with ``connection_factory=kurigram_connection(config)``, its
    default codec (TCPAbridged), a fresh in-memory session whose DC is the stand-in, and one
    key exchange: the first frame is its req_pq_multi, the connect is given up while it waits
    for the answer (kurigram's key exchange then closes its connection), and no session was
    started, so nothing restarts in the background."""

    codec = "abridged"

    async def connect(self, dc: MTProtoDC, config: Mapping[str, Any]) -> Outcome:
        connection = kurigram_connection(**config)
        client = client_for(connection, (dc.host, dc.port))
        try:
            # A failed key exchange would be tried 5 more times, a second apart.
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(Auth, "MAX_RETRIES", 0)
                error = await _until_first_frame(client.connect(), dc)
            statuses = botsession.route_status(client)
        finally:
            if client.is_connected:
                await client.disconnect()
            else:
                await client.storage.close()
        assert connection.router is not None
        return Outcome(error, statuses, connection.router.sockets.held, _tasks_left())


def _tasks_left() -> list[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return [task for task in asyncio.all_tasks() if task is not current and not task.done()]


async def _until_first_frame(connect: Awaitable[object], dc: MTProtoDC) -> BaseException | None:
    """Run ``connect`` until ``dc`` has one frame more (then give it up: the DC never
    answers) or it ends by itself; what it raised."""
    frames = len(dc.frames)
    connecting = asyncio.ensure_future(connect)
    try:
        await until(lambda: connecting.done() or len(dc.frames) > frames, WAIT)
    finally:
        connecting.cancel()
        await asyncio.wait([connecting])
    if connecting.cancelled():
        return None
    return connecting.exception()


DRIVERS: dict[str, Callable[[], ClientDriver]] = {
    "telethon": TelethonDriver,
    "kurigram": KurigramDriver,
}


@pytest.fixture(params=list(DRIVERS))
def client(request: pytest.FixtureRequest) -> ClientDriver:
    """Each MTProto client botsession has a connection for."""
    return DRIVERS[request.param]()


# --- the stand-in DC and the daemons --------------------------------------------------------


@pytest.fixture
def dc(background: BackgroundLoop) -> Iterator[MTProtoDC]:
    """A stand-in DC that keeps each connection open, silent, after the first frame."""
    server = MTProtoDC(background, hang_up=False).start()
    yield server
    server.stop()


Daemon = RunningProxy | TlsProxy

HOPS: dict[str, tuple[str, str]] = {
    "danted-socks5": ("dante", "socks5"),
    "danted-socks4": ("dante", "socks4"),
    "microsocks-socks5-auth": ("micro", "socks5"),
    "tinyproxy-http-auth": ("tiny", "http"),
    "ssh-socks5": ("ssh_proxy", "socks5"),
    "ssh-socks4a": ("ssh_proxy", "socks4a"),
    "stunnel-https-auth": ("stunnel", "https"),
}
"""Each daemon and the scheme it is given as: (its fixture, the hop's scheme)."""


@dataclass
class Hop:
    """A daemon as a hop of the route, and what it logged before the test."""

    daemon: Daemon
    config: str | dict[str, Any]
    """The hop as the configuration gives it."""
    logged_before: int

    def connected_to(self, port: int) -> list[tuple[str, int]]:
        """The connections the daemon made since the test began, once one to ``port`` is
        logged (the logs may lag)."""
        self.daemon.wait_for_destination(port, WAIT)
        return self.daemon.destinations()[self.logged_before :]


def hops(request: pytest.FixtureRequest, ca_file: Path, *names: str) -> list[Hop]:
    """The daemons of ``names`` (keys of ``HOPS``) as hops, started if they were not yet."""
    found = []
    for name in names:
        fixture, scheme = HOPS[name]
        daemon: Daemon = request.getfixturevalue(fixture)
        config = daemon.hop(ca_file) if isinstance(daemon, TlsProxy) else daemon.url(scheme)
        found.append(Hop(daemon, config, len(daemon.destinations())))
    return found


@contextlib.asynccontextmanager
async def nothing_left_open_down_to(dc: MTProtoDC) -> AsyncIterator[None]:
    """The block leaves no file descriptor open in this process, the stand-in DC's side of a
    connection included (it closes when the daemons pass the client's close on)."""
    async with nothing_left_open():
        yield
        assert await until(lambda: dc.open_connections == 0, WAIT), "the DC's side stayed open"


# pass(1): tcp/connect [: <client> <danted's port> -> <danted's end> <target>
_DANTED_END = re.compile(
    r"\bpass\(\d+\): tcp/connect \[: .* -> (?P<host>\S+)\.(?P<port>\d+) \S+\.(?P<target>\d+)$"
)


def danted_ends(log: str, port: int) -> list[tuple[str, int]]:
    """The addresses danted connected from to ``port``, as its log tells them."""
    found = [_DANTED_END.search(line) for line in log.splitlines()]
    return [(m["host"], int(m["port"])) for m in found if m and int(m["target"]) == port]


def arrived_through(client: ClientDriver, dc: MTProtoDC, route: list[Hop]) -> None:
    """The DC got one connection, whose first frame is the client's req_pq_multi, intact, in
    its codec; each hop connected to the next one, the last to the DC."""
    assert dc.errors == []
    assert len(dc.peers) == 1
    assert [frame.codec for frame in dc.frames] == [client.codec]
    assert dc.frames[0].is_req_pq_multi()
    targets = [(hop.daemon.host, hop.daemon.port) for hop in route[1:]] + [(LOOPBACK, dc.port)]
    for hop, target in zip(route, targets, strict=True):
        assert hop.connected_to(target[1]) == [target], hop.daemon.name
    last = route[-1].daemon
    if isinstance(last, RunningProxy) and last.name == "danted":  # Dante logs its end too
        assert dc.peers == danted_ends(last.log_text(), dc.port)


# --- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOPS)
async def test_the_first_frame_comes_through_each_daemon(
    client: ClientDriver, dc: MTProtoDC, request: pytest.FixtureRequest, ca_file: Path, name: str
) -> None:
    """Through each daemon alone (credentials where it asks for them, TLS to stunnel), the
    DC's first frame is the client's, intact, and the daemon logged the connection to the DC;
    after disconnect() nothing is left open or running, down to the DC's side."""
    route = hops(request, ca_file, name)
    async with nothing_left_open_down_to(dc):
        outcome = await client.connect(dc, {"proxy": route[0].config})
    assert outcome.error is None
    assert [status.state for status in outcome.statuses] == ["active"]
    assert outcome.sockets_held == 0
    assert outcome.tasks_left == []
    arrived_through(client, dc, route)


async def test_the_first_frame_comes_through_a_chain_of_three_daemons(
    client: ClientDriver, dc: MTProtoDC, request: pytest.FixtureRequest, ca_file: Path
) -> None:
    """microsocks (socks5, credentials) → danted (socks5) → stunnel/tinyproxy (https,
    credentials): each daemon connected to the next and the last to the DC, which got the
    frame intact; nothing is left open after disconnect()."""
    route = hops(request, ca_file, "microsocks-socks5-auth", "danted-socks5", "stunnel-https-auth")
    async with nothing_left_open_down_to(dc):
        outcome = await client.connect(dc, {"proxy": [hop.config for hop in route]})
    assert outcome.error is None
    assert outcome.sockets_held == 0
    assert outcome.tasks_left == []
    arrived_through(client, dc, route)


async def test_a_dead_primary_falls_back_to_a_daemon(
    client: ClientDriver, dc: MTProtoDC, request: pytest.FixtureRequest, ca_file: Path
) -> None:
    """With nothing listening at the primary's port, the frame reaches the DC through the
    fallback daemon, route_status(client) tells the primary failed, naming its hop (the
    password masked), and disconnect() stops the background check of the primary."""
    port = free_port()
    dead = f"socks5://mia:{SENTINEL}@{LOOPBACK}:{port}"
    route = hops(request, ca_file, "danted-socks5")
    async with nothing_left_open_down_to(dc):
        outcome = await client.connect(dc, {"proxy": dead, "fallback": [route[0].config]})
    assert outcome.error is None
    assert outcome.sockets_held == 0
    assert outcome.tasks_left == []
    arrived_through(client, dc, route)
    primary, fallback = outcome.statuses
    assert (primary.state, fallback.state) == ("failed", "active")
    assert primary.last_error is not None
    assert primary.last_error.startswith(
        f"proxy hop 1 of 1 (socks5://mia:***@{LOOPBACK}:{port}): connection refused"
    )
    assert SENTINEL not in primary.last_error
