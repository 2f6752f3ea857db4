"""Telethon over botsession routes, at the transport level: a real ``TelegramClient`` connects
through in-process proxies to a stand-in data center (tests/mtproto_dc.py), which records the
first MTProto transport frame. The stand-in speaks no MTProto, so ``connect()`` never
completes the handshake: what counts is what arrived, through which route, how soon, and that
nothing is left open after ``disconnect()``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from telethon import TelegramClient
from telethon.network.connection import ConnectionTcpAbridged, ConnectionTcpFull
from telethon.sessions import MemorySession

import botsession
from botsession import AllRoutesFailedError, ConfigError, ProxyHopError
from botsession.telethon import RouteConnection, telethon_connection

from .conftest import ProxyFactory
from .failover_support import UNHEDGED, Recorded, silent, states, until
from .faultproxy import FaultProxyFactory
from .mtproto_dc import MTProtoDC, req_pq_multi
from .servers import BackgroundLoop
from .support import LOOPBACK, free_port, nothing_left_open

HEDGE = 0.3
"""fallback_hedge_after of the hedging tests (seconds)."""
SENDER_LOG = "telethon.network.mtprotosender"
"""Telethon's logger that tells why each connect attempt failed."""


def client_for(connection: type[RouteConnection], dc: MTProtoDC, **options: Any) -> TelegramClient:
    """A Telethon client pointed at the stand-in DC (as DC 2), failing fast: no retries."""
    arguments: dict[str, Any] = {"connection_retries": 0, "retry_delay": 0, "timeout": 5}
    client = TelegramClient(MemorySession(), 1, "x", connection=connection, **(arguments | options))
    client.session.set_dc(2, LOOPBACK, dc.port)
    return client


async def connect_once(client: TelegramClient) -> BaseException | None:
    """``client.connect()``; what it raised (the stand-in DC hangs up instead of answering)."""
    try:
        await client.connect()
    except (ConnectionError, asyncio.IncompleteReadError) as error:
        return error
    return None


@contextlib.asynccontextmanager
async def waiting_for_frame(
    client: TelegramClient, dc: MTProtoDC, frames: int
) -> AsyncIterator[None]:
    """``client.connect()`` running until the silent DC has ``frames`` frames in all (Telethon
    then waits for an answer that never comes), then given up and ``disconnect()``ed."""
    connecting = asyncio.ensure_future(client.connect())
    try:
        assert await until(lambda: len(dc.frames) == frames, 5)
        yield
    finally:
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
        await client.disconnect()


# --- the first frame arrives intact --------------------------------------------------------


@pytest.mark.parametrize("codec", ["full", "abridged", "intermediate"])
async def test_the_first_frame_reaches_the_dc_intact_through_socks5(
    dc: MTProtoDC, proxy: ProxyFactory, codec: Any
) -> None:
    """Each codec's first frame — an unencrypted req_pq_multi — arrives byte for byte through
    a SOCKS5 proxy with credentials, which was asked for the DC's address."""
    hop = proxy("socks5", "user", "pa ss")
    connection = telethon_connection(proxy=hop.url(), codec=codec)
    client = client_for(connection, dc)
    async with nothing_left_open():
        error = await connect_once(client)
        await client.disconnect()
    # The DC hung up where Telethon waited for the answer: its own error, not a route's.
    assert isinstance(error, asyncio.IncompleteReadError)
    assert [frame.codec for frame in dc.frames] == [codec]
    assert dc.frames[0].is_req_pq_multi()
    assert dc.errors == []
    assert hop.destinations == [(LOOPBACK, dc.port)]
    assert states(connection) == ["active"]


async def test_the_default_codec_is_telethons_tcpfull(dc: MTProtoDC, proxy: ProxyFactory) -> None:
    """Without ``codec`` the class is a TcpFull connection (a subclass of Telethon's own), and
    its frames carry sequence number 0 and a valid CRC32 (checked by the stand-in)."""
    connection = telethon_connection(proxy=proxy("socks5").url())
    assert issubclass(connection, ConnectionTcpFull)
    assert not issubclass(connection, ConnectionTcpAbridged)
    assert issubclass(
        telethon_connection(proxy="socks5://127.0.0.1:9", codec="abridged"), ConnectionTcpAbridged
    )
    client = client_for(connection, dc)
    await connect_once(client)
    await client.disconnect()
    assert [(frame.codec, len(frame.raw)) for frame in dc.frames] == [("full", 4 + 4 + 40 + 4)]


@pytest.mark.parametrize("kinds", [("socks5", "http"), ("http", "socks4a")], ids="-".join)
async def test_the_first_frame_goes_through_a_two_hop_chain(
    dc: MTProtoDC, proxy: ProxyFactory, kinds: tuple[str, str]
) -> None:
    """Through a chain, hop 1 is asked for hop 2 and hop 2 for the DC; the frame arrives."""
    first, second = proxy(kinds[0]), proxy(kinds[1])
    connection = telethon_connection(proxy=[first.url(), second.url()])
    client = client_for(connection, dc)
    async with nothing_left_open():
        await connect_once(client)
        await client.disconnect()
    assert first.destinations == [(LOOPBACK, second.port)]
    assert second.destinations == [(LOOPBACK, dc.port)]
    assert len(dc.frames) == 1
    assert dc.frames[0].is_req_pq_multi()


@pytest.mark.parametrize("kind", ["socks4", "socks4a", "http", "https", "link"])
async def test_every_hop_kind_carries_the_first_frame(
    dc: MTProtoDC, proxy: ProxyFactory, fault_proxy: FaultProxyFactory, kind: str
) -> None:
    """SOCKS4, SOCKS4a, HTTP CONNECT, an https proxy and a Telegram SOCKS link (CONNECT inside TLS with the proxy;
    the MTProto stream inside that TLS, raw): the frame arrives intact."""
    hop: Any = fault_proxy("https") if kind == "https" else proxy(kind)
    url = hop.url()
    if kind == "link":  # a Telegram SOCKS link: a SOCKS5 hop with credentials
        hop = proxy("socks5", "bot", "pa&ss")
        url = f"tg://socks?server={LOOPBACK}&port={hop.port}&user=bot&pass=pa%26ss"
    connection = telethon_connection(proxy=url)
    client = client_for(connection, dc)
    async with nothing_left_open():
        await connect_once(client)
        await client.disconnect()
    assert hop.destinations == [(LOOPBACK, dc.port)]
    assert [frame.is_req_pq_multi() for frame in dc.frames] == [True]


async def test_an_ipv6_dc_is_reached_through_the_route(
    background: BackgroundLoop, fault_proxy: FaultProxyFactory
) -> None:
    """Telethon with ``use_ipv6`` dials the DC's IPv6 address: the SOCKS5 proxy is asked for
    it (as an IPv6 address, not a name) and the frame arrives."""
    dc = MTProtoDC(background, host="::1").start()
    try:
        hop = fault_proxy("socks5")
        connection = telethon_connection(proxy=hop.url())
        client = TelegramClient(
            MemorySession(), 1, "x", connection=connection, connection_retries=0, use_ipv6=True
        )
        client.session.set_dc(2, "::1", dc.port)
        async with nothing_left_open():
            await connect_once(client)
            await client.disconnect()
    finally:
        dc.stop()
    assert hop.destinations == [("::1", dc.port)]
    assert [frame.is_req_pq_multi() for frame in dc.frames] == [True]


async def test_the_obfuscated_transport_goes_through_the_route(
    background: BackgroundLoop, proxy: ProxyFactory
) -> None:
    """``codec="obfuscated"`` (Telethon's TcpObfuscated, obfuscated2): the 64-byte header and
    the encrypted abridged frame arrive; decrypted with the header's key, the frame is
    req_pq_multi."""
    dc = MTProtoDC(background, obfuscated=True).start()
    try:
        hop = proxy("socks5")
        connection = telethon_connection(proxy=hop.url(), codec="obfuscated")
        client = client_for(connection, dc)
        async with nothing_left_open():
            await connect_once(client)
            await client.disconnect()
    finally:
        dc.stop()
    assert dc.errors == []
    assert [frame.codec for frame in dc.frames] == ["obfuscated"]
    assert dc.frames[0].is_req_pq_multi()
    assert hop.destinations == [(LOOPBACK, dc.port)]


# --- fallback and hedging -----------------------------------------------------------------


@pytest.mark.parametrize("fault", ["refused", "reset", "close"])
async def test_a_refusing_primary_falls_back_at_once(
    dc: MTProtoDC, proxy: ProxyFactory, fault_proxy: FaultProxyFactory, fault: str
) -> None:
    """A primary that refuses (nothing listens, an RST, a hang-up at the SOCKS reply) costs
    no wait: the frame reaches the DC through the fallback, sent once."""
    if fault == "refused":
        primary_url = f"socks5://{LOOPBACK}:{free_port()}"
    else:
        primary_url = fault_proxy("socks5", step="reply", fault=fault).url()  # type: ignore[arg-type]
    backup = proxy("socks5")
    connection = telethon_connection(proxy=primary_url, fallback=[backup.url()])
    client = client_for(connection, dc)
    async with nothing_left_open():
        started = time.monotonic()
        await connect_once(client)
        taken = time.monotonic() - started
        await client.disconnect()
    assert len(dc.frames) == 1
    assert dc.frames[0].is_req_pq_multi()
    assert backup.destinations == [(LOOPBACK, dc.port)]
    assert states(connection) == ["failed", "active"]
    assert taken < UNHEDGED / 4
    # botsession.route_status finds the routes through the client, the class, a connection.
    assert [s.state for s in botsession.route_status(client)] == ["failed", "active"]
    one = connection(LOOPBACK, dc.port, 2, loggers=_loggers())
    assert botsession.route_status(connection) == botsession.route_status(one)


async def test_a_silent_primary_costs_the_hedge_delay(
    dc: MTProtoDC, proxy: ProxyFactory, fault_proxy: FaultProxyFactory
) -> None:
    """With a primary that accepts and never answers, the frame reaches the DC through the
    fallback after the hedge delay, not after connect_timeout; the next connect goes straight
    through the fallback."""
    primary, backup = silent(fault_proxy), proxy("socks5")
    connection = telethon_connection(
        proxy=primary.url(), fallback=[backup.url()], fallback_hedge_after=HEDGE
    )
    client = client_for(connection, dc)
    async with nothing_left_open():
        started = time.monotonic()
        await connect_once(client)
        first = dc.frames[0].at - started
        await client.disconnect()
        started = time.monotonic()
        await connect_once(client)
        second = dc.frames[1].at - started
        await client.disconnect()
    assert HEDGE <= first < UNHEDGED / 4
    assert second < HEDGE
    assert [frame.is_req_pq_multi() for frame in dc.frames] == [True, True]
    assert len(backup.destinations) == 2
    assert states(connection) == ["failed", "active"]


async def test_a_failed_primary_is_checked_against_the_dc_and_taken_back(
    silent_dc: MTProtoDC, proxy: ProxyFactory, fault_proxy: FaultProxyFactory
) -> None:
    """While a connection is open, the background check of a failed primary opens a tunnel to
    the DC the client dialled and sends nothing through it; once the primary works again, the
    next connect goes through it."""
    dc = silent_dc
    primary, backup = fault_proxy("socks5", step="reply", fault="reset"), proxy("socks5")
    connection = telethon_connection(
        proxy=primary.url(), fallback=[backup.url()], fallback_retry_primary_after=1
    )
    client = client_for(connection, dc)
    async with nothing_left_open():
        async with waiting_for_frame(client, dc, 1):
            assert states(connection) == ["failed", "active"]
            primary.fault = "pass"
            assert await until(lambda: states(connection) == ["active", "standby"], 5)
        # The check reached the DC through the primary, and sent nothing there.
        assert primary.destinations[-1] == (LOOPBACK, dc.port)
        assert await until(lambda: len(dc.errors) == 1, 5)
        assert dc.errors[0].startswith("IncompleteReadError: 0 bytes read")
        async with waiting_for_frame(client, dc, 2):
            pass
    assert len(primary.destinations) == 2  # the check, the new connect (a reset one is not kept)
    assert [frame.is_req_pq_multi() for frame in dc.frames] == [True, True]
    assert len(backup.destinations) == 1


async def test_connects_are_recorded_with_opentelemetry(
    dc: MTProtoDC, proxy: ProxyFactory, otel: Recorded
) -> None:
    """Each hop's connect duration and a connect span to the DC's port, as for the Bot API."""
    first, second = proxy("socks5"), proxy("http")
    client = client_for(telethon_connection(proxy=[first.url(), second.url()]), dc)
    await connect_once(client)
    await client.disconnect()
    hops = sorted(
        (point.attributes["botsession.hop.index"], point.attributes["botsession.proxy.scheme"])
        for point in otel.points("botsession.proxy.connect.duration")
    )
    assert hops == [(0, "socks5"), (1, "http")]
    [connect] = [span for span in otel.spans() if span.name == "botsession.proxy.connect"]
    assert connect.attributes["server.port"] == dc.port
    assert connect.status.is_ok


# --- failures -------------------------------------------------------------------------------


async def test_a_dead_route_reaches_telethon_as_a_connection_error_naming_the_hop(
    dc: MTProtoDC, caplog: pytest.LogCaptureFixture
) -> None:
    """With every route down, Telethon's attempts fail with an error that is both a
    ConnectionError (Telethon retries it) and botsession's, naming the hop; Telethon logs it
    and raises its own ConnectionError. The router's status keeps the hop's error."""
    port = free_port()
    connection = telethon_connection(proxy=f"socks5://user:secret@{LOOPBACK}:{port}")
    client = client_for(connection, dc, connection_retries=1)
    async with nothing_left_open():
        with caplog.at_level(logging.WARNING, logger=SENDER_LOG):
            error = await connect_once(client)
        await client.disconnect()
    assert isinstance(error, ConnectionError)
    assert str(error) == "Connection to Telegram failed 1 time(s)"
    said = [r.getMessage() for r in caplog.records if r.name == SENDER_LOG]
    hop = f"proxy hop 1 of 1 (socks5://user:***@{LOOPBACK}:{port})"
    assert len(said) == 2  # connection_retries=1: two attempts
    for attempt, message in enumerate(said, start=1):
        assert message.startswith(f"Attempt {attempt} at connecting failed: ProxyHopError: {hop}")
        assert "secret" not in message
    [status] = connection.route_status()
    assert status.state == "failed"
    assert status.last_error is not None
    assert hop in status.last_error
    assert dc.frames == []


async def test_the_error_of_a_dead_route_is_a_connection_error_and_botsessions(
    dc: MTProtoDC, fault_proxy: FaultProxyFactory
) -> None:
    """What Telethon gets from the connection: a ConnectionError (an OSError: Telethon's
    retries and reconnects treat it as a network failure) that is also a ProxyHopError, or an
    AllRoutesFailedError naming each route's hop, within connect_timeout."""
    broken = fault_proxy("socks5", step="greeting", fault="garbage")
    single = telethon_connection(proxy=broken.url())
    connection = single(LOOPBACK, dc.port, 2, loggers=_loggers())
    with pytest.raises(ConnectionError) as raised:
        await connection.connect(timeout=5)
    assert isinstance(raised.value, ProxyHopError)
    assert str(raised.value).startswith(f"proxy hop 1 of 1 ({broken.url()}):")
    await connection.disconnect()

    both = telethon_connection(
        proxy=broken.url(), fallback=[f"http://{LOOPBACK}:{free_port()}"], connect_timeout=2
    )
    connection = both(LOOPBACK, dc.port, 2, loggers=_loggers())
    started = time.monotonic()
    with pytest.raises(ConnectionError) as raised:
        await connection.connect(timeout=5)
    assert time.monotonic() - started < 2
    assert isinstance(raised.value, AllRoutesFailedError)
    assert str(raised.value).startswith("all 2 proxy routes failed: route proxy (")
    assert "route fallback[0] (http://127.0.0.1:" in str(raised.value)
    await connection.disconnect()
    assert dc.frames == []


class _Loggers(dict[str, logging.Logger]):
    """What Telethon gives a connection as ``loggers``: a logger for each module name."""

    def __missing__(self, key: str) -> logging.Logger:
        return logging.getLogger(key)


def _loggers() -> _Loggers:
    return _Loggers()


# --- Telethon's reconnects ------------------------------------------------------------------


async def test_a_connection_reconnects_through_the_route_as_telethon_does(
    dc: MTProtoDC, proxy: ProxyFactory, background: BackgroundLoop
) -> None:
    """Telethon reconnects a dropped connection by ``disconnect()`` then ``connect()`` on the
    same object: each connect opens a new tunnel through the route (nothing of the old stream
    is replayed by botsession) and starts the codec afresh (sequence number 0 again). Two
    connections of one class (Telethon's senders for two DCs) share its router."""
    hop = proxy("socks5")
    other_dc = MTProtoDC(background).start()
    try:
        cls = telethon_connection(proxy=hop.url())
        first = cls(LOOPBACK, dc.port, 2, loggers=_loggers())
        second = cls(LOOPBACK, other_dc.port, 4, loggers=_loggers())
        async with nothing_left_open():
            for _ in range(2):
                await asyncio.gather(first.connect(timeout=5), second.connect(timeout=5))
                await first.send(req_pq_multi())
                await second.send(req_pq_multi())
                # The stand-ins hang up after the frame: Telethon's reads end, as on a drop.
                for connection in (first, second):
                    with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
                        await connection.recv()
                    await connection.disconnect()
    finally:
        other_dc.stop()
    assert [frame.is_req_pq_multi() for frame in dc.frames + other_dc.frames] == [True] * 4
    assert sorted(hop.destinations) == sorted([(LOOPBACK, dc.port), (LOOPBACK, other_dc.port)] * 2)
    assert cls.router is not None
    assert cls.router.sockets.held == 0


async def test_a_disconnect_still_running_leaves_the_new_connect_alone(
    silent_dc: MTProtoDC, proxy: ProxyFactory
) -> None:
    """A disconnect that has begun when the same object is connected again (Telethon's
    receive loop and its sender's reconnect) does not stop the router under the new
    connect."""
    cls = telethon_connection(proxy=proxy("socks5").url())
    connection = cls(LOOPBACK, silent_dc.port, 2, loggers=_loggers())
    async with nothing_left_open():
        await connection.connect(timeout=5)
        lingering = asyncio.ensure_future(connection.disconnect())
        await asyncio.sleep(0)  # it has begun: Telethon cancels its loops
        await connection.connect(timeout=5)
        await lingering
        await connection.send(req_pq_multi())
        assert await until(lambda: len(silent_dc.frames) == 1, 5)
        await connection.disconnect()
        assert await until(lambda: silent_dc.open_connections == 0, 5)
    assert silent_dc.frames[0].is_req_pq_multi()


# --- nothing left open ----------------------------------------------------------------------


async def test_disconnect_closes_a_connection_the_dc_keeps_open(
    silent_dc: MTProtoDC, proxy: ProxyFactory
) -> None:
    """A DC that keeps the connection open after the first frame leaves Telethon waiting for
    its answer; ``disconnect()`` then closes the tunnel, the proxy's connections and the
    router's socket count."""
    hop = proxy("socks5")
    connection = telethon_connection(proxy=hop.url(), limit=4)
    client = client_for(connection, silent_dc)
    router = connection.router
    assert router is not None
    async with nothing_left_open():
        connecting = asyncio.ensure_future(client.connect())
        assert await until(lambda: len(silent_dc.frames) == 1, 5)
        assert router.sockets.held == 1
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
        await client.disconnect()
        assert await until(lambda: silent_dc.open_connections == 0 and hop.serving == 0, 5)
    assert router.sockets.held == 0
    assert silent_dc.frames[0].is_req_pq_multi()


async def test_a_connect_given_up_on_a_silent_route_leaves_nothing_open(
    dc: MTProtoDC, fault_proxy: FaultProxyFactory
) -> None:
    """Cancelling ``client.connect()`` while the route is still connecting (a silent proxy)
    gives the attempt up: its socket is closed and given back, nothing reached the DC."""
    primary = silent(fault_proxy)
    connection = telethon_connection(proxy=primary.url())
    client = client_for(connection, dc)
    router = connection.router
    assert router is not None
    async with nothing_left_open():
        connecting = asyncio.ensure_future(client.connect())
        assert await until(lambda: router.sockets.held == 1, 5)
        await asyncio.sleep(0.1)
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
        await client.disconnect()
    assert router.sockets.held == 0
    assert dc.frames == []
    assert dc.peers == []


@pytest.mark.parametrize("run", range(10))  # the hang-up races the hand-over
async def test_a_dc_that_hangs_up_at_once_ends_the_connect(
    background: BackgroundLoop, proxy: ProxyFactory, run: int
) -> None:
    """A DC that closes each connection as soon as it is made (its FIN may come before the
    stream is handed to Telethon): Telethon's read ends, it does not wait forever."""
    dc = MTProtoDC(background, at_once=True).start()
    try:
        connection = telethon_connection(proxy=proxy("socks5").url(), limit=2)
        client = client_for(connection, dc)
        router = connection.router
        assert router is not None
        async with nothing_left_open():
            error = await asyncio.wait_for(connect_once(client), 5)
            await client.disconnect()
        assert isinstance(error, (asyncio.IncompleteReadError, ConnectionError))
        assert router.sockets.held == 0
    finally:
        dc.stop()


async def test_background_checks_stop_with_the_last_disconnect(
    dc: MTProtoDC, proxy: ProxyFactory
) -> None:
    """A failed primary is checked in the background while the client is connected; the last
    ``disconnect()`` stops the checks (no task is left to the event loop)."""
    backup = proxy("socks5")
    connection = telethon_connection(
        proxy=f"socks5://{LOOPBACK}:{free_port()}",
        fallback=[backup.url()],
        fallback_retry_primary_after=30,
    )
    client = client_for(connection, dc)
    router = connection.router
    assert router is not None
    await connect_once(client)
    checks = [task for task in router._checks.values() if not task.done()]
    assert len(checks) == 1
    await client.disconnect()
    assert all(task.done() for task in checks)


# --- configuration --------------------------------------------------------------------------


async def test_a_configuration_without_routes_connects_directly(dc: MTProtoDC) -> None:
    connection = telethon_connection()
    assert connection.router is None
    assert connection.route_status() == ()
    client = client_for(connection, dc)
    async with nothing_left_open():
        await connect_once(client)
        await client.disconnect()
    assert len(dc.frames) == 1
    assert dc.frames[0].is_req_pq_multi()


async def test_telethons_own_proxy_cannot_be_combined_with_the_route(dc: MTProtoDC) -> None:
    connection = telethon_connection(proxy="socks5://127.0.0.1:9")
    client = client_for(connection, dc, proxy=("socks5", LOOPBACK, 9))
    with pytest.raises(ValueError, match=r"TelegramClient\(proxy=\.\.\.\) cannot be combined"):
        await client.connect()
    await client.disconnect()
    assert dc.frames == []


async def test_telethons_local_addr_cannot_be_combined_with_a_route(dc: MTProtoDC) -> None:
    """The route decides where connections leave from; without a route, Telethon's
    ``local_addr`` is used as Telethon uses it."""
    routed = client_for(telethon_connection(proxy="socks5://127.0.0.1:9"), dc, local_addr=LOOPBACK)
    with pytest.raises(ValueError, match=r"TelegramClient\(local_addr=\.\.\.\) cannot be"):
        await routed.connect()
    await routed.disconnect()
    direct = client_for(telethon_connection(), dc, local_addr=LOOPBACK)
    await connect_once(direct)
    await direct.disconnect()
    assert len(dc.frames) == 1


def test_an_unknown_codec_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as raised:
        telethon_connection(proxy="socks5://127.0.0.1:9", codec="http")  # type: ignore[arg-type]
    assert "codec=" in str(raised.value)
    assert "'full', 'abridged', 'intermediate', 'obfuscated', not 'http'" in str(raised.value)


def test_route_status_tells_a_client_with_telethons_own_connection_apart() -> None:
    client = TelegramClient(MemorySession(), 1, "x")
    with pytest.raises(TypeError) as raised:
        botsession.route_status(client)
    assert str(raised.value).endswith(
        "got telethon.client.telegramclient.TelegramClient whose connection is "
        "class telethon.network.connection.tcpfull.ConnectionTcpFull"
    )


def test_a_bad_configuration_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as raised:
        telethon_connection(proxy="socks9://user:secret@127.0.0.1:9")
    assert "secret" not in str(raised.value)


def test_botsession_offers_it_lazily() -> None:
    assert botsession.telethon_connection is telethon_connection
    assert "telethon_connection" in dir(botsession)
