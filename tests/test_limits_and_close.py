"""``close()`` means closed, and ``limit`` bounds every socket to the proxies — hedged attempts
and background checks included — with real sessions and proxies; and the routing rules that
only a race or a flapping route reaches, pinned on scripted tunnels."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any, get_args

import aiohttp
import jsonschema
import pytest

from botsession import (
    AllRoutesFailedError,
    ConfigError,
    ProxyHopError,
    SessionClosedError,
    build_client_session,
    load_config,
)
from botsession.config_schema import yaml_json_schema
from botsession.net import routing

from .clients import Adapter, client
from .conftest import ProxyFactory
from .failover_support import FakeTunnel, Gauge, SlowProxy, fake_router, states, until
from .faultproxy import FaultProxyFactory
from .servers import BackgroundLoop, BotApiStandIn, Listener, SilentServer, stream_listener
from .support import PATIENT

HEDGE = 0.2
"""fallback_hedge_after of these tests (seconds)."""
KEEP_ALIVE = 15.0
"""How long aiohttp keeps an idle connection open by default (seconds)."""


def relays(background: BackgroundLoop, upstreams: list[int], gauge: Gauge) -> list[SlowProxy]:
    """Forwarders to ``upstreams`` that count, together, the client connections open at once."""
    return [SlowProxy(background, port, 0.0, gauge=gauge).start() for port in upstreams]


@pytest.mark.parametrize("adapter", get_args(Adapter))
async def test_close_during_a_hedged_connect_ends_it_at_once_and_dials_nothing_more(
    adapter: Adapter,
    bot_api: BotApiStandIn,
    background: BackgroundLoop,
    silent_server: SilentServer,
) -> None:
    """Closing the client while a request hedges over silent routes fails that request at
    once with SessionClosedError, closes its attempts and dials none of the later routes."""
    gauge = Gauge()
    dead = relays(background, [silent_server.port] * 3, gauge)
    try:
        settings = {
            "proxy": dead[0].url(),
            "fallback": [dead[1].url(), dead[2].url()],
            "fallback_hedge_after": HEDGE,
            "connect_timeout": PATIENT,
            "timeout": PATIENT * 2,
        }
        async with client(adapter, bot_api, **settings) as used:
            request = asyncio.ensure_future(used.get_me())
            assert await until(lambda: dead[1].accepted == 1, PATIENT)
            assert [relay.accepted for relay in dead] == [1, 1, 0]
            await used.close()
            with pytest.raises(Exception) as caught:  # noqa: PT011 - each framework's own
                await asyncio.wait_for(request, PATIENT / 3)
            await asyncio.sleep(3 * HEDGE)  # when the next route would have been dialled
            assert [relay.accepted for relay in dead] == [1, 1, 0]
            assert await until(lambda: gauge.open == 0, PATIENT)
    finally:
        for relay in dead:
            relay.stop()
    chain = [caught.value, caught.value.__cause__, caught.value.__context__]
    assert any(isinstance(error, SessionClosedError) for error in chain), repr(caught.value)
    assert "the session was closed while connecting" in str(caught.value)
    assert bot_api.calls == []


async def test_a_session_closed_and_used_again_connects_again(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """close() ends what was connecting, not the session: a later request connects anew."""
    hop = proxy("socks5")
    async with client("aiogram", bot_api, proxy=hop.url()) as used:
        await used.get_me()
        await used.close()
        await used.get_me()
    assert len(bot_api.calls) == 2


@pytest.mark.parametrize("adapter", ["aiogram", "aiohttp"])
async def test_limit_bounds_every_proxy_socket_while_a_silent_primary_is_hedged(
    adapter: Adapter,
    *,
    bot_api: BotApiStandIn,
    proxy: ProxyFactory,
    background: BackgroundLoop,
    silent_server: SilentServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With limit 2, a silent primary and two fallbacks, six simultaneous requests (and the
    background checks of the primary after them) never hold more than 2 proxy sockets at once;
    every request arrives once."""
    monkeypatch.setattr(routing, "FIRST_CHECK_AFTER", 0.05)
    gauge = Gauge()
    live = [proxy("socks5"), proxy("socks5")]
    forwarders = relays(background, [silent_server.port, live[0].port, live[1].port], gauge)
    try:
        settings = {
            "proxy": forwarders[0].url(),
            "fallback": [forwarders[1].url(), forwarders[2].url()],
            "fallback_hedge_after": HEDGE,
            "connect_timeout": PATIENT,
            "limit": 2,
        }
        async with client(adapter, bot_api, **settings) as used:
            answers = await asyncio.gather(*(used.get_me() for _ in range(6)))
            checks = forwarders[0].accepted
            await until(lambda: forwarders[0].accepted >= checks + 2, PATIENT)
            assert forwarders[0].accepted >= checks + 2, "no background check ran"
            assert await used.get_me()
    finally:
        for forwarder in forwarders:
            forwarder.stop()
    assert len(answers) == 6
    assert len(bot_api.calls) == 7
    assert gauge.peak == 2


async def test_a_check_with_no_free_socket_has_an_idle_connection_closed_first(
    bot_api: BotApiStandIn,
    proxy: ProxyFactory,
    background: BackgroundLoop,
    fault_proxy: FaultProxyFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With limit 1 held by an idle connection, the check of a failed route has that idle
    connection closed and runs in its place: never two proxy sockets at once."""
    monkeypatch.setattr(routing, "FIRST_CHECK_AFTER", 0.05)
    gauge = Gauge()
    refusing = fault_proxy("socks5", step="greeting", fault="close")
    dead, backup = relays(background, [refusing.port, proxy("socks5").port], gauge)
    try:
        settings = {"proxy": dead.url(), "fallback": [backup.url()], "limit": 1}
        async with client("aiohttp", bot_api, **settings) as used:
            await used.get_me()  # refused by the primary, carried by the backup: idle afterwards
            checked = dead.accepted
            # Long before aiohttp's keep-alive (15 s) would close the idle connection itself.
            assert await until(lambda: dead.accepted >= checked + 2, KEEP_ALIVE / 3)
            await used.get_me()
    finally:
        dead.stop()
        backup.stop()
    assert gauge.peak == 1
    assert len(bot_api.calls) == 2


async def test_a_check_with_no_free_socket_waits_a_whole_interval_for_its_next_turn(
    scripted_tunnels: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While every socket the limit allows stays busy, a failed route's check is skipped once
    per interval (shortened by the jitter at most), never again at once."""
    monkeypatch.setattr(routing, "FIRST_CHECK_AFTER", 0.05)
    turns: list[float] = []
    check = routing.Router._check

    async def counted_check(router: routing.Router, index: int, wait: float) -> None:
        turns.append(time.perf_counter())
        await check(router, index, wait)

    monkeypatch.setattr(routing.Router, "_check", counted_check)
    scripted_tunnels["ready"].update({0: "fail", 1: 0.01})
    router = fake_router(scripted_tunnels, 2, hedge=None, retry=0.05, limit=1)
    busy = await router.connect("api.example", 443)  # the primary refused: the backup's tunnel
    started = time.perf_counter()
    await asyncio.sleep(0.5)  # the one socket stays in use all along
    spell = time.perf_counter() - started
    assert scripted_tunnels["dialled"] == [0, 1]  # no check could dial
    shortest = 0.05 * (1 - routing.CHECK_JITTER)
    assert 2 <= len(turns) <= math.ceil(spell / shortest) + 1
    busy.close()
    await router.close()


# --- scripted tunnels: rules a race reaches ---------------------------------------------------


async def test_a_loser_that_finishes_while_being_cancelled_is_closed(
    scripted_tunnels: dict[str, Any],
) -> None:
    """A hedged attempt that completes its tunnel although it was cancelled (as asyncio.wait_for
    does on Python 3.11 when the result is already there) has that tunnel closed, and its
    socket given back."""
    scripted_tunnels["ready"].update({0: "stubborn", 1: 0.05})
    router = fake_router(scripted_tunnels, 2, hedge=0.02, limit=2)
    tunnel = await router.connect("api.example", 443)
    opened = scripted_tunnels["opened"]
    assert isinstance(tunnel, FakeTunnel)
    assert tunnel.index == 1
    assert [(t.index, t.closed) for t in opened] == [(1, False), (0, True)]
    assert router.sockets.held == 1
    await router.close()


async def test_the_socket_limit_sheds_a_hedged_attempt_for_a_new_one(
    scripted_tunnels: dict[str, Any],
) -> None:
    """With limit 1, the hedge of a silent primary gives the primary's attempt up and takes its
    socket; the primary is failed with a message that says why."""
    scripted_tunnels["ready"].update({0: None, 1: 0.02})
    router = fake_router(scripted_tunnels, 2, hedge=0.05, limit=1)
    tunnel = await router.connect("api.example", 443)
    assert tunnel.index == 1
    assert scripted_tunnels["cancelled"] == [0]
    assert router.sockets.held == 1
    assert states(router) == ["failed", "active"]
    error = router.route_status()[0].last_error or ""
    assert "given up so that the session holds no more than its limit of 1" in error
    await router.close()


async def test_an_attempt_given_up_for_its_socket_is_a_timeout_of_its_route(
    scripted_tunnels: dict[str, Any],
) -> None:
    """When the route that took the socket of a shed attempt fails too, the error of the shed
    one is a timeout of its hop, listed first."""
    scripted_tunnels["ready"].update({0: None, 1: "fail"})
    router = fake_router(scripted_tunnels, 2, hedge=0.05, limit=1)
    with pytest.raises(AllRoutesFailedError) as caught:
        await router.connect("api.example", 443)
    [(first, shed), (second, refused)] = caught.value.failures
    assert (first, shed.hop_number, shed.hop_count, shed.reason) == (1, 1, 1, "timeout")
    assert shed.hop == "socks5://127.0.0.1:1001"
    assert (second, refused.reason) == (2, "refused")
    assert router.sockets.held == 0
    await router.close()


async def test_an_attempt_waits_for_a_socket_and_takes_it_when_one_is_given_back(
    scripted_tunnels: dict[str, Any],
) -> None:
    """With limit 1 and no hedging, a second connect waits until the first tunnel is closed."""
    scripted_tunnels["ready"].update({0: 0.0})
    router = fake_router(scripted_tunnels, 1, hedge=None, limit=1)
    first = await router.connect("api.example", 443)
    second = asyncio.ensure_future(router.connect("api.example", 443))
    await asyncio.sleep(0.3)
    assert not second.done()
    first.close()
    assert (await asyncio.wait_for(second, PATIENT)).index == 0
    assert router.sockets.held == 1
    await router.close()


async def test_a_socket_never_given_back_is_overrun_after_the_connect_timeout_with_a_warning(
    scripted_tunnels: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Rather than wait forever, an attempt that found no free socket for a whole connect
    timeout (and not before) takes one more and says so."""
    scripted_tunnels["ready"].update({0: 0.0})
    router = fake_router(scripted_tunnels, 1, hedge=None, limit=1, connect_timeout=1.5)
    await router.connect("api.example", 443)
    started = time.monotonic()
    second = await router.connect("api.example", 443)
    assert time.monotonic() - started >= 1.5
    assert second.index == 0
    assert router.sockets.held == 2
    assert [r.getMessage() for r in caplog.records if r.name == "botsession"] == [
        "all 1 proxy sockets (limit) stayed in use for 1.5 s; one more opened"
    ]
    await router.close()


async def test_an_attempt_cancelled_while_waiting_for_a_socket_holds_none(
    scripted_tunnels: dict[str, Any],
) -> None:
    """A connect cancelled while it waits for a socket leaves the count as it was: the next
    socket given back is free again."""
    scripted_tunnels["ready"].update({0: 0.0})
    router = fake_router(scripted_tunnels, 1, hedge=None, limit=1)
    first = await router.connect("api.example", 443)
    waiting = asyncio.ensure_future(router.connect("api.example", 443))
    await asyncio.sleep(0.2)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert router.sockets.held == 1
    first.close()
    assert router.sockets.held == 0
    await router.close()


async def test_a_socket_handed_to_an_attempt_as_it_is_cancelled_is_given_back(
    scripted_tunnels: dict[str, Any],
) -> None:
    """A socket given back to a waiting attempt in the same moment that attempt is given up
    (as shedding does) is not lost: it is free again."""
    scripted_tunnels["ready"].update({0: 0.0})
    router = fake_router(scripted_tunnels, 1, hedge=PATIENT, limit=1)
    first = await router.connect("api.example", 443)
    waiting = asyncio.ensure_future(router.connect("api.example", 443))
    await asyncio.sleep(0.2)
    [attempt] = [task for race in router._races for task in race.running]
    first.close()  # hands the socket to the waiting attempt ...
    attempt.cancel()  # ... which is given up before it runs again
    with pytest.raises(ProxyHopError):
        await waiting
    assert router.sockets.held == 0
    await router.close()


async def test_a_closed_router_fails_the_connects_in_progress_and_gives_their_sockets_back(
    scripted_tunnels: dict[str, Any],
) -> None:
    """stop() fails each connect in progress with SessionClosedError, cancels its attempts,
    and leaves no socket held."""
    scripted_tunnels["ready"].update({0: None, 1: None})
    router = fake_router(scripted_tunnels, 2, hedge=0.05, limit=4)
    connects = [asyncio.ensure_future(router.connect("api.example", 443)) for _ in range(2)]
    await asyncio.sleep(0.2)
    router.stop()
    for connect in connects:
        with pytest.raises(SessionClosedError):
            await connect
    assert sorted(scripted_tunnels["cancelled"]) == [0, 0, 1, 1]
    assert router.sockets.held == 0
    await router.close()


async def test_health_checks_give_up_after_the_hedge_delay(
    bot_api: BotApiStandIn,
    proxy: ProxyFactory,
    background: BackgroundLoop,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A primary that connects, but only after the hedge delay, stays failed: its checks give
    up at the hedge delay (it would lose every race), so traffic does not return to it."""
    monkeypatch.setattr(routing, "FIRST_CHECK_AFTER", 0.05)
    slow = SlowProxy(background, proxy("socks5").port, delay=3 * HEDGE).start()
    backup = proxy("socks5")
    try:
        settings = {
            "proxy": slow.url(),
            "fallback": [backup.url()],
            "fallback_hedge_after": HEDGE,
            "fallback_retry_primary_after": 1.0,
            "connect_timeout": PATIENT,
        }
        async with client("aiohttp", bot_api, **settings) as used:
            await used.get_me()
            # Each check gives up before the slow primary relays: checks go on.
            assert await until(lambda: slow.accepted >= 4, PATIENT)
            failed_for = states(used)
    finally:
        slow.stop()
    assert failed_for == ["failed", "active"]


def test_a_route_failing_again_soon_after_it_recovered_is_checked_from_the_first_interval(
    scripted_tunnels: dict[str, Any],
) -> None:
    """A route that fails again soon after it recovered (a flapping primary) is checked again
    after the first interval, not later: it is used again as soon as it works."""
    router = fake_router(scripted_tunnels, 2, hedge=None, retry=10.0)
    health = router._health[0]
    router._route_failed(0, "down", None, time.perf_counter())
    assert health.interval == routing.FIRST_CHECK_AFTER
    health.interval = 8.0  # its checks backed off while it was down
    router._route_worked(0, None)
    router._route_failed(0, "down again", None, time.perf_counter())
    assert health.interval == routing.FIRST_CHECK_AFTER


def test_the_wait_before_a_check_is_shortened_at_random_never_lengthened() -> None:
    """Each wait before a check is between four fifths of its interval and the interval, and
    the waits differ (checks do not fall into step with a proxy that flaps on a schedule)."""
    waits = [routing.jittered(5.0) for _ in range(200)]
    assert all(4.0 <= wait <= 5.0 for wait in waits)
    assert max(waits) - min(waits) > 0.5


def test_sockets_of_a_closed_event_loop_are_not_counted_in_the_next_one(
    scripted_tunnels: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A router used again from a new event loop does not count the sockets of the old one
    (they closed with it), so its first connect takes a socket at once."""
    scripted_tunnels["ready"].update({0: 0.0})
    router = fake_router(scripted_tunnels, 1, hedge=None, limit=1, connect_timeout=0.5)
    asyncio.run(router.connect("api.example", 443))  # its tunnel is never closed
    assert router.sockets.held == 1
    asyncio.run(router.connect("api.example", 443))
    assert router.sockets.held == 1
    assert "one more opened" not in caplog.text


FLOORED = {
    "timeout": 0.1,
    "connect_timeout": 0.1,
    "fallback_hedge_after": 0.05,
    "fallback_retry_primary_after": 1.0,
}


@pytest.mark.parametrize(("name", "floor"), FLOORED.items())
def test_every_interval_and_timeout_has_a_floor_that_says_why(
    name: str, floor: float, tmp_path: Path
) -> None:
    """A value under its floor (0.001 s of checks would be a thousand connections a second)
    is a ConfigError naming the place, the floor and why; the floor itself is accepted."""
    routes = {"proxy": "socks5://127.0.0.1:1080", "fallback": ["socks5://127.0.0.1:1081"]}
    (tmp_path / "bot.yaml").write_text(
        f"proxy: socks5://127.0.0.1:1080\nfallback: [socks5://127.0.0.1:1081]\n{name}: 0.001\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "bot.yaml")
    [problem] = caught.value.problems
    assert str(problem).startswith(f"{tmp_path / 'bot.yaml'}:3:{len(name) + 3}: {name}: ")
    assert f"must be at least {floor:g} s: " in problem.message
    assert problem.message.endswith("found 0.001")
    assert getattr(load_config(**routes, **{name: floor}), name) == floor


def test_the_default_hedge_delay_follows_a_short_connect_timeout_down_to_its_floor() -> None:
    """With the shortest connect_timeout and fallbacks, the default hedge delay is half of it:
    the hedge floor, never an error."""
    config = load_config(
        proxy="socks5://127.0.0.1:1080", fallback=["socks5://127.0.0.1:1081"], connect_timeout=0.1
    )
    assert config.fallback_hedge_after == FLOORED["fallback_hedge_after"]


@pytest.mark.parametrize(("name", "floor"), FLOORED.items())
def test_the_json_schema_tells_editors_each_floor(name: str, floor: float) -> None:
    """``botsession schema`` refuses a value under the floor and takes the floor itself."""
    validator = jsonschema.Draft202012Validator(yaml_json_schema())
    routes = {"proxy": "socks5://127.0.0.1:1080", "fallback": ["socks5://127.0.0.1:1081"]}
    assert list(validator.iter_errors({**routes, name: floor})) == []
    [error] = validator.iter_errors({**routes, name: floor / 2})
    assert "minimum" in {found.validator for found in [error, *error.context]}


async def test_a_tunnel_the_far_end_closed_before_the_hand_over_gives_its_socket_back(
    proxy: ProxyFactory, background: BackgroundLoop
) -> None:
    """A server that closes each connection as soon as it is made (the close reaches botsession
    with the proxy's last reply, before aiohttp has the tunnel): the request fails at once, and
    the tunnel's socket goes back to the router, so a session with ``limit: 1`` keeps working."""

    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def start() -> Listener:
        return await stream_listener(close_at_once)

    listener = background.run(start())
    hop = proxy("socks5")
    try:
        async with build_client_session(proxy=hop.url(), limit=1, timeout=PATIENT) as session:
            router = session.connector.router  # type: ignore[union-attr]
            for _ in range(3):  # with the socket kept, the second would wait for it in vain
                with pytest.raises(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{listener.port}/") as response:
                        await response.read()
                assert await until(lambda: router.sockets.held == 0, PATIENT)
    finally:
        background.run(listener.close())
