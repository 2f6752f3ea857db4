"""kurigram over botsession routes, at the transport level: a real kurigram ``Client`` connects
through in-process proxies to a stand-in data center (tests/mtproto_dc.py), which records the
first MTProto transport frame. The stand-in speaks no MTProto, so a fresh session's key
exchange stops at its first message (kurigram then fails with its own error); what counts is
what arrived, through which route, how soon, and that nothing is left open."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import threading
import time
from typing import Any

import pytest
from pyrogram.connection.transport import (
    TCPAbridgedO,
    TCPFull,
    TCPIntermediate,
)
from pyrogram.session import Auth

import botsession
from botsession import AllRoutesFailedError, ConfigError, ProxyHopError, SessionClosedError
from botsession.kurigram import RESTART_PAUSE, RouteConnection, kurigram_connection

from .conftest import FAULT_AUTH, ProxyFactory
from .failover_support import UNHEDGED, Recorded, silent, states, until
from .faultproxy import FaultProxyFactory
from .kurigram_support import authorized, client_for
from .mtproto_dc import MTProtoDC, req_pq_multi
from .servers import BackgroundLoop
from .support import LOOPBACK, free_port, nothing_left_open

HEDGE = 0.3
"""fallback_hedge_after of the hedging tests (seconds)."""
SESSION_LOG = "pyrogram.session.session"
"""kurigram's logger that tells why a session restarts."""


@pytest.fixture
def one_key_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    """kurigram's key exchange tries once: the stand-in never answers it, and each retry
    would cost a second."""
    monkeypatch.setattr(Auth, "MAX_RETRIES", 0)


def at(dc: MTProtoDC) -> tuple[str, int]:
    return (dc.host, dc.port)


async def connect_once(client: Any) -> BaseException | None:
    """``client.connect()`` on a fresh session; what it raised (the stand-in hangs up where
    kurigram waits for the answer to its first message). The storage is closed after."""
    try:
        await client.connect()
    except Exception as error:
        return error
    finally:
        if client.is_connected:
            await client.disconnect()
        else:
            await client.storage.close()
    return None


def key_exchange_cut_short(error: BaseException | None) -> bool:
    """kurigram's error when the DC hung up instead of answering its first message: it reads
    an empty answer (``KeyError: 0`` in its TL reader) or none at all."""
    return isinstance(error, (KeyError, ConnectionError, TimeoutError))


# --- the first frame arrives intact --------------------------------------------------------


@pytest.mark.parametrize(
    ("framing", "codec"),
    [(None, "abridged"), (TCPFull, "full"), (TCPIntermediate, "intermediate")],
    ids=["default", "full", "intermediate"],
)
async def test_the_first_frame_reaches_the_dc_intact_through_socks5(
    dc: MTProtoDC, proxy: ProxyFactory, one_key_exchange: None, framing: Any, codec: str
) -> None:
    """kurigram's own framing (TCPAbridged by default, or the ``protocol_factory`` given)
    carries the first frame — an unencrypted req_pq_multi — byte for byte through a SOCKS5
    proxy with credentials, which was asked for the DC's address."""
    hop = proxy("socks5", "user", "pa ss")
    connection = kurigram_connection(proxy=hop.url())
    options = {} if framing is None else {"protocol_factory": framing}
    client = client_for(connection, at(dc), **options)
    async with nothing_left_open():
        error = await connect_once(client)
    assert key_exchange_cut_short(error), repr(error)
    assert [frame.codec for frame in dc.frames] == [codec]
    assert dc.frames[0].is_req_pq_multi()
    assert dc.errors == []
    assert hop.destinations == [(LOOPBACK, dc.port)]
    assert states(connection) == ["active"]
    assert [status.state for status in botsession.route_status(client)] == ["active"]


@pytest.mark.parametrize("kinds", [("socks5", "http"), ("http", "socks4a")], ids="-".join)
async def test_the_first_frame_goes_through_a_two_hop_chain(
    dc: MTProtoDC, proxy: ProxyFactory, one_key_exchange: None, kinds: tuple[str, str]
) -> None:
    """Through a chain, hop 1 is asked for hop 2 and hop 2 for the DC; the frame arrives."""
    first, second = proxy(kinds[0]), proxy(kinds[1])
    client = client_for(kurigram_connection(proxy=[first.url(), second.url()]), at(dc))
    async with nothing_left_open():
        await connect_once(client)
    assert first.destinations == [(LOOPBACK, second.port)]
    assert second.destinations == [(LOOPBACK, dc.port)]
    assert [frame.is_req_pq_multi() for frame in dc.frames] == [True]


@pytest.mark.parametrize("kind", ["socks4", "socks4a", "http", "https", "link"])
async def test_every_hop_kind_carries_the_first_frame(
    dc: MTProtoDC,
    proxy: ProxyFactory,
    fault_proxy: FaultProxyFactory,
    one_key_exchange: None,
    kind: str,
) -> None:
    """SOCKS4, SOCKS4a, HTTP CONNECT, an https proxy and a Telegram SOCKS link (the MTProto stream raw inside the
    TLS with the proxy): the frame arrives intact."""
    hop: Any = fault_proxy("https") if kind == "https" else proxy(kind)
    url = hop.url()
    if kind == "link":  # a Telegram SOCKS link: a SOCKS5 hop with credentials
        hop = proxy("socks5", "bot", "pa&ss")
        url = f"tg://socks?server={LOOPBACK}&port={hop.port}&user=bot&pass=pa%26ss"
    client = client_for(kurigram_connection(proxy=url), at(dc))
    async with nothing_left_open():
        await connect_once(client)
    assert hop.destinations == [(LOOPBACK, dc.port)]
    assert [frame.is_req_pq_multi() for frame in dc.frames] == [True]


async def test_an_ipv6_dc_is_reached_through_the_route(
    background: BackgroundLoop, fault_proxy: FaultProxyFactory, one_key_exchange: None
) -> None:
    """A DC at an IPv6 address: the SOCKS5 proxy is asked for that address and the frame
    arrives."""
    dc = MTProtoDC(background, host="::1").start()
    try:
        hop = fault_proxy("socks5")
        client = client_for(kurigram_connection(proxy=hop.url()), at(dc), ipv6=True)
        async with nothing_left_open():
            await connect_once(client)
    finally:
        dc.stop()
    assert hop.destinations == [("::1", dc.port)]
    assert [frame.is_req_pq_multi() for frame in dc.frames] == [True]


async def test_the_obfuscated_framing_goes_through_the_route_and_stops_its_thread(
    background: BackgroundLoop, proxy: ProxyFactory, one_key_exchange: None
) -> None:
    """kurigram's TCPAbridgedO (obfuscated2): the 64-byte header and the encrypted frame
    arrive and decrypt to req_pq_multi; the crypto thread kurigram starts for it is stopped
    when the connection closes, while kurigram still holds the connection."""
    dc = MTProtoDC(background, obfuscated=True).start()
    try:
        hop = proxy("socks5")
        cls = kurigram_connection(proxy=hop.url())
        async with nothing_left_open():
            await connect_once(client_for(cls, at(dc), protocol_factory=TCPAbridgedO))
        assert await until(lambda: crypto_threads() == 0, 5)
        held = cls(
            dc_id=2,
            server_address=LOOPBACK,
            port=dc.port,
            test_mode=False,
            protocol_factory=TCPAbridgedO,
        )
        await held.connect()
        await held.send(req_pq_multi())  # encrypted on kurigram's crypto thread
        assert crypto_threads() == 1
        await held.close()
        assert await until(lambda: crypto_threads() == 0, 5)
    finally:
        dc.stop()
    assert dc.errors == []
    assert [frame.codec for frame in dc.frames] == ["obfuscated", "obfuscated"]
    assert all(frame.is_req_pq_multi() for frame in dc.frames)


async def test_the_tag_and_the_first_frame_leave_without_waiting(
    dc: MTProtoDC, proxy: ProxyFactory
) -> None:
    """kurigram writes its one-byte tag and its first frame apart: the tunnel's socket has
    Nagle off (TCP_NODELAY), so the frame does not wait for the ACK of the tag (40 ms)."""
    cls = kurigram_connection(proxy=proxy("socks5").url())
    connection = cls(dc_id=2, server_address=LOOPBACK, port=dc.port, test_mode=False)
    await connection.connect()
    try:
        assert connection.protocol is not None
        assert connection.protocol.writer is not None
        sock = connection.protocol.writer.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        await connection.close()


def crypto_threads() -> int:
    """The threads kurigram's transports run their ciphers on, alive now."""
    return sum(thread.name.startswith("CryptoWorker") for thread in threading.enumerate())


# --- fallback and hedging -----------------------------------------------------------------


@pytest.mark.parametrize("fault", ["refused", "reset", "close"])
async def test_a_refusing_primary_falls_back_at_once(
    dc: MTProtoDC,
    proxy: ProxyFactory,
    fault_proxy: FaultProxyFactory,
    one_key_exchange: None,
    fault: str,
) -> None:
    """A primary that refuses (nothing listens, an RST, a hang-up at the SOCKS reply) costs
    no wait: the frame reaches the DC through the fallback, sent once."""
    if fault == "refused":
        primary_url = f"socks5://{LOOPBACK}:{free_port()}"
    else:
        primary_url = fault_proxy("socks5", step="reply", fault=fault).url()  # type: ignore[arg-type]
    backup = proxy("socks5")
    connection = kurigram_connection(proxy=primary_url, fallback=[backup.url()])
    client = client_for(connection, at(dc))
    async with nothing_left_open():
        started = time.monotonic()
        await connect_once(client)
        taken = dc.frames[0].at - started
    assert [frame.is_req_pq_multi() for frame in dc.frames] == [True]
    assert backup.destinations == [(LOOPBACK, dc.port)]
    assert states(connection) == ["failed", "active"]
    assert taken < UNHEDGED / 4
    assert [s.state for s in botsession.route_status(client)] == ["failed", "active"]


async def test_a_silent_primary_costs_the_hedge_delay(
    dc: MTProtoDC, proxy: ProxyFactory, fault_proxy: FaultProxyFactory, one_key_exchange: None
) -> None:
    """With a primary that accepts and never answers, the frame reaches the DC through the
    fallback after the hedge delay, not after connect_timeout; the next client of the class
    goes straight through the fallback."""
    primary, backup = silent(fault_proxy), proxy("socks5")
    connection = kurigram_connection(
        proxy=primary.url(), fallback=[backup.url()], fallback_hedge_after=HEDGE
    )
    async with nothing_left_open():
        started = time.monotonic()
        await connect_once(client_for(connection, at(dc)))
        first = dc.frames[0].at - started
        started = time.monotonic()
        await connect_once(client_for(connection, at(dc)))
        second = dc.frames[1].at - started
    assert HEDGE <= first < UNHEDGED / 4
    assert second < HEDGE
    assert [frame.is_req_pq_multi() for frame in dc.frames] == [True, True]
    assert len(backup.destinations) == 2
    assert states(connection) == ["failed", "active"]


async def test_connects_are_recorded_with_opentelemetry(
    dc: MTProtoDC, proxy: ProxyFactory, otel: Recorded, one_key_exchange: None
) -> None:
    """Each hop's connect duration and a connect span to the DC's port, as for the Bot API."""
    first, second = proxy("socks5"), proxy("http")
    client = client_for(kurigram_connection(proxy=[first.url(), second.url()]), at(dc))
    await connect_once(client)
    hops = sorted(
        (point.attributes["botsession.hop.index"], point.attributes["botsession.proxy.scheme"])
        for point in otel.points("botsession.proxy.connect.duration")
    )
    assert hops == [(0, "socks5"), (1, "http")]
    [connect] = [span for span in otel.spans() if span.name == "botsession.proxy.connect"]
    assert connect.attributes["server.port"] == dc.port
    assert connect.status.is_ok


# --- a route that fails before the client ever connected ----------------------------------


async def test_a_dead_route_at_the_first_connect_raises_the_hop_once(
    dc: MTProtoDC, fault_proxy: FaultProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A fresh session whose route is dead: ``connect()`` raises botsession's error naming
    the hop (no password, in it or in kurigram's log), and kurigram's key-exchange retries
    (five, a second apart) get it again without dialling the dead proxy: it saw one
    connection."""
    dead = fault_proxy("socks5", step="auth", fault="close")  # credentials: FAULT_AUTH
    connection = kurigram_connection(proxy=dead.url())
    client = client_for(connection, at(dc))
    async with nothing_left_open():
        with caplog.at_level(logging.DEBUG):
            error = await connect_once(client)
    assert "Retrying due to ProxyHopError: proxy hop 1 of 1" in caplog.text
    assert FAULT_AUTH[1] not in caplog.text
    assert isinstance(error, ProxyHopError)
    assert not isinstance(error, OSError)
    user, password = FAULT_AUTH
    assert str(error).startswith(f"proxy hop 1 of 1 (socks5://{user}:***@{LOOPBACK}:{dead.port})")
    assert password not in str(error)
    assert dead.accepted == 1
    assert dc.peers == []


async def test_a_dead_route_stops_a_session_with_a_key_at_once(
    dc: MTProtoDC, fault_proxy: FaultProxyFactory
) -> None:
    """A session with a key (a bot that logged in before) whose route is dead at start:
    ``connect()`` raises the hop's error at once — it does not report success and retry in
    the background as kurigram does on network errors."""
    dead = fault_proxy("socks5", step="reply", fault="reset")
    spare = f"http://{LOOPBACK}:{free_port()}"
    connection = kurigram_connection(proxy=dead.url(), fallback=[spare])
    client = client_for(connection, at(dc), storage=await authorized(at(dc)))
    async with nothing_left_open():
        error = await connect_once(client)
    assert isinstance(error, AllRoutesFailedError)
    assert str(error).startswith("all 2 proxy routes failed: route proxy (")
    assert "route fallback[0] (http://127.0.0.1:" in str(error)
    assert not client.is_connected
    assert dead.accepted == 1
    assert states(connection) == ["failed", "failed"]


# --- a route that fails once the client has been connected --------------------------------


async def test_a_route_lost_while_running_is_restarted_through_as_kurigram_does(
    silent_dc: MTProtoDC, fault_proxy: FaultProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A running client (a session with a key) whose route breaks: each connect kurigram
    makes to restart its session fails with a ConnectionError naming the hop (kurigram logs
    it and tries again a second later, the bot stays up); once the proxy works again the
    session reconnects through it. ``disconnect()`` ends the retries: no dial after it."""
    dc = silent_dc
    hop = fault_proxy("socks5", step="greeting")
    connection = kurigram_connection(proxy=hop.url())
    client = client_for(connection, at(dc), storage=await authorized(at(dc)))
    async with nothing_left_open():
        with caplog.at_level(logging.INFO, logger=SESSION_LOG):
            # The stand-in never answers kurigram's ping: its session restarts, reconnecting.
            await client.connect()
            assert await until(lambda: len(dc.frames) >= 1, 10)
            hop.fault = "reset"
            assert await until(lambda: len(_route_restarts(caplog)) >= 3, 20)
            hop.fault = "pass"
            frames = len(dc.frames)
            assert await until(lambda: len(dc.frames) > frames, 20)
            await client.disconnect()
        dialled = hop.accepted
        await asyncio.sleep(1.5)
    assert hop.accepted == dialled
    message = _restarted_on_route_error(caplog)
    assert message is not None
    assert f"proxy hop 1 of 1 ({hop.url()})" in message
    # kurigram restarts at once on each failure: the connection's pause spaces the dials.
    failed_at = [record.created for record in _route_restarts(caplog)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(failed_at)]
    assert len(gaps) >= 2
    assert min(gaps) >= RESTART_PAUSE * 0.9


def _route_restarts(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == SESSION_LOG and "ProxyHopError - proxy hop" in record.getMessage()
    ]


def _restarted_on_route_error(caplog: pytest.LogCaptureFixture) -> str | None:
    restarts = _route_restarts(caplog)
    return restarts[0].getMessage() if restarts else None


async def test_after_a_connection_the_error_is_a_connection_error_and_botsessions(
    dc: MTProtoDC, proxy: ProxyFactory
) -> None:
    """Once a connection of the class got through, a route failure reaches kurigram as a
    ConnectionError (an OSError: kurigram restarts on it) that is also a ProxyHopError naming
    the hop; before, it is botsession's error only (kurigram stops on it)."""
    hop = proxy("socks5")
    cls = kurigram_connection(proxy=hop.url())
    first = cls(dc_id=2, server_address=LOOPBACK, port=dc.port, test_mode=False)
    await first.connect()
    await first.close()
    hop.stop()
    second = cls(dc_id=2, server_address=LOOPBACK, port=dc.port, test_mode=False)
    with pytest.raises(ConnectionError) as raised:
        await second.connect()
    await second.close()
    assert isinstance(raised.value, ProxyHopError)
    assert str(raised.value).startswith(f"proxy hop 1 of 1 ({hop.url()}): connection refused")

    fresh = kurigram_connection(proxy=hop.url())(
        dc_id=2, server_address=LOOPBACK, port=dc.port, test_mode=False
    )
    with pytest.raises(ProxyHopError) as raised_first:
        await fresh.connect()
    assert not isinstance(raised_first.value, OSError)
    await fresh.close()


# --- nothing left open ----------------------------------------------------------------------


async def test_a_connection_closed_while_dialling_keeps_nothing(
    silent_dc: MTProtoDC, fault_proxy: FaultProxyFactory
) -> None:
    """``close()`` (kurigram stopping a session) while the connection is still dialling a
    slow route: the tunnel that comes through afterwards is closed, not kept, the connect
    fails with SessionClosedError, and the router's socket count goes back to 0."""
    slow = fault_proxy("socks5", step="reply", fault="stall")
    cls = kurigram_connection(proxy=slow.url())
    connection = cls(dc_id=2, server_address=LOOPBACK, port=silent_dc.port, test_mode=False)
    router = cls.router
    assert router is not None
    async with nothing_left_open():
        connecting = asyncio.ensure_future(connection.connect())
        assert await until(lambda: router.sockets.held == 1, 5)
        await connection.close()
        with pytest.raises(SessionClosedError):
            await connecting
        assert await until(lambda: router.sockets.held == 0, 5)
    assert silent_dc.frames == []


async def test_disconnect_closes_a_connection_the_dc_keeps_open(
    silent_dc: MTProtoDC, proxy: ProxyFactory
) -> None:
    """A session whose DC stays silent: ``disconnect()`` closes the tunnel, the proxy's
    connections and the router's socket count, and stops the background checks."""
    hop = proxy("socks5")
    connection = kurigram_connection(proxy=hop.url(), limit=4)
    client = client_for(connection, at(silent_dc), storage=await authorized(at(silent_dc)))
    router = connection.router
    assert router is not None
    async with nothing_left_open():
        await client.connect()
        assert await until(lambda: len(silent_dc.frames) >= 1, 10)
        await client.disconnect()
        assert await until(lambda: silent_dc.open_connections == 0 and hop.serving == 0, 5)
    assert router.sockets.held == 0
    assert not router._checks


async def test_background_checks_stop_with_the_last_disconnect(
    dc: MTProtoDC, proxy: ProxyFactory, one_key_exchange: None
) -> None:
    """A failed primary is checked in the background while a connection of the class is
    open; when the last one closes, the checks stop (no task is left to the event loop)."""
    backup = proxy("socks5")
    cls = kurigram_connection(
        proxy=f"socks5://{LOOPBACK}:{free_port()}",
        fallback=[backup.url()],
        fallback_retry_primary_after=30,
    )
    router = cls.router
    assert router is not None
    first = cls(dc_id=2, server_address=LOOPBACK, port=dc.port, test_mode=False)
    second = cls(dc_id=4, server_address=LOOPBACK, port=dc.port, test_mode=False)
    await first.connect()
    await second.connect()
    checks = [task for task in router._checks.values() if not task.done()]
    assert len(checks) == 1
    await first.close()
    assert not any(task.done() for task in checks)  # the second connection is still open
    await second.close()
    assert all(task.done() for task in checks)


# --- configuration --------------------------------------------------------------------------


async def test_a_configuration_without_routes_connects_directly(
    dc: MTProtoDC, one_key_exchange: None
) -> None:
    """Without routes the class is kurigram's own connection: the frame arrives directly."""
    connection = kurigram_connection()
    assert connection.router is None
    assert connection.route_status() == ()
    async with nothing_left_open():
        await connect_once(client_for(connection, at(dc)))
    assert [frame.is_req_pq_multi() for frame in dc.frames] == [True]


async def test_kurigrams_own_proxy_cannot_be_combined_with_the_route(dc: MTProtoDC) -> None:
    """``Client(proxy=...)`` with a botsession connection is refused, saying what to do."""
    client = client_for(
        kurigram_connection(proxy="socks5://127.0.0.1:9"),
        at(dc),
        proxy={"scheme": "socks5", "hostname": LOOPBACK, "port": 9},
    )
    error = await connect_once(client)
    assert isinstance(error, ValueError)
    assert str(error).startswith("Client(proxy=...) cannot be combined with a botsession")
    assert dc.peers == []


def test_route_status_tells_a_client_with_kurigrams_own_connection_apart() -> None:
    from pyrogram import Client

    client = Client("test", api_id=1, api_hash="0" * 32, in_memory=True)
    with pytest.raises(TypeError) as raised:
        botsession.route_status(client)
    assert str(raised.value).endswith(
        "got pyrogram.client.Client whose connection_factory is "
        "class pyrogram.connection.connection.Connection"
    )


def test_a_bad_configuration_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as raised:
        kurigram_connection(proxy="socks9://user:secret@127.0.0.1:9")
    assert "secret" not in str(raised.value)


def test_botsession_offers_it_lazily() -> None:
    assert botsession.kurigram_connection is kurigram_connection
    assert "kurigram_connection" in dir(botsession)
    assert issubclass(kurigram_connection(), RouteConnection)
