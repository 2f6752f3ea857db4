"""Hedged connects: a silent primary costs the hedge delay, not the connect timeout, and the
first tunnel that is ready carries the request, which reaches the server exactly once."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiogram import Bot
from telegram import Bot as PtbBot

from botsession import AllRoutesFailedError, build_client_session, load_config
from botsession.httpx_transport import build_httpx_client
from botsession.net import routing
from botsession.ptb import build_ptb_request

from .conftest import ProxyFactory
from .failover_support import (
    UNHEDGED,
    FakeTunnel,
    SlowProxy,
    fake_router,
    silent,
    states,
    until,
)
from .faultproxy import FaultProxyFactory
from .servers import BackgroundLoop, BotApiStandIn
from .support import LATE, PATIENT, SENTINEL, TOKEN, free_port, session_for

HEDGE = 0.3
"""fallback_hedge_after of most tests here (seconds): short, to keep the suite fast."""


@pytest.fixture
def slow_proxy(background: BackgroundLoop, proxy: ProxyFactory) -> Iterator[Any]:
    started: list[SlowProxy] = []

    def start(delay: float) -> SlowProxy:
        upstream = proxy("socks5")
        server = SlowProxy(background, upstream.port, delay).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# --- aiogram ---------------------------------------------------------------------------------


async def test_silent_primary_costs_the_hedge_delay_not_the_connect_timeout(
    bot_api: BotApiStandIn, proxy: ProxyFactory, fault_proxy: FaultProxyFactory
) -> None:
    """With a silent primary, aiogram's first request completes after the hedge delay plus the
    fallback's connect time (not the 10 s connect timeout), and the next ones at full speed."""
    primary, backup = silent(fault_proxy), proxy("socks5")
    bot_api.close_connections = True  # every request needs a tunnel of its own
    session = session_for(
        bot_api, primary.url(), fallback=[backup.url()], fallback_hedge_after=HEDGE
    )
    assert session.config.connect_timeout == UNHEDGED
    async with Bot(TOKEN, session=session) as bot:
        started = time.monotonic()
        await bot.get_me()
        first = time.monotonic() - started
        for _ in range(5):
            await bot.get_me()
        assert states(session) == ["failed", "active"]
    assert HEDGE <= first < UNHEDGED / 2
    assert [call.method for call in bot_api.calls] == ["getMe"] * 6
    assert len(backup.destinations) == 6
    # The next requests went straight through the fallback: no more waiting on the primary.
    assert primary.accepted == 1
    assert primary.destinations == []


async def test_default_hedge_delay_is_two_seconds(
    bot_api: BotApiStandIn, proxy: ProxyFactory, fault_proxy: FaultProxyFactory
) -> None:
    """With fallback routes and nothing else set, a silent primary costs 2 s (the default hedge
    delay), not the 10 s connect timeout."""
    primary, backup = silent(fault_proxy), proxy("http")
    session = session_for(bot_api, primary.url(), fallback=[backup.url()])
    assert session.config.fallback_hedge_after == 2
    async with Bot(TOKEN, session=session) as bot:
        started = time.monotonic()
        await bot.get_me()
        first = time.monotonic() - started
    assert 2 <= first < UNHEDGED / 2
    assert len(bot_api.calls) == 1


async def test_without_hedging_a_silent_primary_costs_the_connect_timeout(
    bot_api: BotApiStandIn, proxy: ProxyFactory, fault_proxy: FaultProxyFactory
) -> None:
    """fallback_hedge_after: null waits for the primary's connect timeout before the fallback."""
    primary, backup = silent(fault_proxy), proxy("socks5")
    session = session_for(
        bot_api,
        primary.url(),
        fallback=[backup.url()],
        fallback_hedge_after=None,
        connect_timeout=1.0,
    )
    async with Bot(TOKEN, session=session) as bot:
        started = time.monotonic()
        await bot.get_me()
        first = time.monotonic() - started
        [failed, _] = session.route_status()
    assert 1.0 <= first < 1.0 + LATE
    assert "no answer within the 1 s connect timeout" in (failed.last_error or "")
    assert len(bot_api.calls) == 1


async def test_slow_primary_that_loses_the_race_never_carries_a_request(
    bot_api: BotApiStandIn,
    proxy: ProxyFactory,
    slow_proxy: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A primary that would be ready only after the fallback loses: its tunnel is closed before
    anything is sent, and the request reaches the server once, through the fallback."""
    monkeypatch.setattr(routing, "FIRST_CHECK_AFTER", PATIENT)  # no check during the test
    primary, backup = slow_proxy(delay=1.0), proxy("socks5")
    session = session_for(bot_api, primary.url(), fallback=[backup.url()], fallback_hedge_after=0.2)
    async with Bot(TOKEN, session=session) as bot:
        started = time.monotonic()
        await bot.get_me()
        first = time.monotonic() - started
        await asyncio.sleep(1.3 - first)  # past the time the primary would have been ready
        assert primary.accepted == 1
        assert primary.relayed == 0  # given up before it reached its upstream proxy
    assert 0.2 <= first < UNHEDGED / 2
    assert [call.method for call in bot_api.calls] == ["getMe"]
    assert len(backup.destinations) == 1


async def test_primary_that_answers_before_the_hedge_delay_is_used_alone(
    bot_api: BotApiStandIn, proxy: ProxyFactory, slow_proxy: Any
) -> None:
    """A primary a little slow but within the hedge delay keeps the traffic: no second tunnel."""
    primary, backup = slow_proxy(delay=0.1), proxy("socks5")
    session = session_for(bot_api, primary.url(), fallback=[backup.url()], fallback_hedge_after=0.6)
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()
        assert states(session) == ["active", "standby"]
    assert primary.relayed == 1
    assert backup.destinations == []
    assert len(bot_api.calls) == 1


async def test_refused_primary_falls_back_at_once_without_waiting_for_the_hedge(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A primary that refuses (nothing listens) hands over at once, not after the hedge delay."""
    dead, backup = free_port(), proxy("socks5")
    session = session_for(
        bot_api,
        f"socks5://127.0.0.1:{dead}",
        fallback=[backup.url()],
        connect_timeout=PATIENT,
        fallback_hedge_after=PATIENT / 2,
    )
    async with Bot(TOKEN, session=session) as bot:
        started = time.monotonic()
        await bot.get_me()
        first = time.monotonic() - started
        [primary, fallback] = session.route_status()
    assert first < PATIENT / 2  # before the hedge delay
    assert (primary.state, fallback.state) == ("failed", "active")
    assert "connection refused" in (primary.last_error or "")
    assert len(bot_api.calls) == 1


async def test_hedging_goes_on_to_the_third_route(
    bot_api: BotApiStandIn, proxy: ProxyFactory, fault_proxy: FaultProxyFactory
) -> None:
    """With two silent routes, the third starts one hedge delay after the second, and wins."""
    first, second, third = silent(fault_proxy), silent(fault_proxy), proxy("socks4")
    session = session_for(
        bot_api,
        first.url(),
        fallback=[second.url(), third.url()],
        fallback_hedge_after=0.25,
    )
    async with Bot(TOKEN, session=session) as bot:
        started = time.monotonic()
        await bot.get_me()
        elapsed = time.monotonic() - started
        assert states(session) == ["failed", "failed", "active"]
    assert 0.5 <= elapsed < UNHEDGED / 2
    assert (first.accepted, second.accepted) == (1, 1)
    assert len(third.destinations) == 1
    assert len(bot_api.calls) == 1


async def test_concurrent_requests_with_a_silent_primary_each_arrive_once(
    bot_api: BotApiStandIn, proxy: ProxyFactory, fault_proxy: FaultProxyFactory
) -> None:
    """Twenty requests at once through a silent primary all complete after the hedge delay, not
    the connect timeout, and each reaches the server exactly once."""
    primary, backup = silent(fault_proxy), proxy("socks5")
    session = session_for(
        bot_api, primary.url(), fallback=[backup.url()], fallback_hedge_after=HEDGE
    )
    async with Bot(TOKEN, session=session) as bot:
        started = time.monotonic()
        users = await asyncio.gather(*(bot.get_me() for _ in range(20)))
        elapsed = time.monotonic() - started
    assert len(users) == 20
    assert elapsed < UNHEDGED / 2
    assert len(bot_api.calls) == 20
    assert primary.destinations == []


# --- the other clients -----------------------------------------------------------------------


async def test_plain_aiohttp_session_hedges_and_reports_route_states(
    bot_api: BotApiStandIn, proxy: ProxyFactory, fault_proxy: FaultProxyFactory
) -> None:
    """build_client_session hedges too, and its connector reports the route states."""
    primary, backup = silent(fault_proxy), proxy("http")
    async with build_client_session(
        proxy=primary.url(), fallback=[backup.url()], fallback_hedge_after=HEDGE
    ) as client:
        assert states(client.connector) == ["active", "standby"]
        started = time.monotonic()
        async with client.post(f"{bot_api.base}/bot{TOKEN}/getMe") as response:
            assert response.status == 200
        elapsed = time.monotonic() - started
        assert states(client.connector) == ["failed", "active"]
    assert HEDGE <= elapsed < UNHEDGED / 2
    assert len(bot_api.calls) == 1


async def test_python_telegram_bot_request_hedges(
    bot_api: BotApiStandIn, proxy: ProxyFactory, fault_proxy: FaultProxyFactory
) -> None:
    """A PTB request with a silent primary is served by the fallback after the hedge delay,
    whatever PTB's per-call connect timeout (here none)."""
    primary, backup = silent(fault_proxy), proxy("socks5")
    request = build_ptb_request(
        proxy=primary.url(),
        fallback=[backup.url()],
        fallback_hedge_after=HEDGE,
        api={"base": bot_api.base},
    )
    async with request:
        bot = PtbBot(TOKEN, base_url=f"{bot_api.base}/bot", request=request)
        started = time.monotonic()
        me = await bot.get_me(connect_timeout=None)
        elapsed = time.monotonic() - started
    assert me.username == "standin_bot"
    assert HEDGE <= elapsed < UNHEDGED / 2
    assert len(bot_api.calls) == 1


async def test_httpx_transport_hedges(
    bot_api: BotApiStandIn, proxy: ProxyFactory, fault_proxy: FaultProxyFactory
) -> None:
    """The httpx transport hedges as well; its router reports the states."""
    primary, backup = silent(fault_proxy), proxy("socks5")
    async with build_httpx_client(
        proxy=primary.url(), fallback=[backup.url()], fallback_hedge_after=HEDGE
    ) as client:
        started = time.monotonic()
        response = await client.post(f"{bot_api.base}/bot{TOKEN}/getMe")
        elapsed = time.monotonic() - started
        assert isinstance(client._transport, httpx.AsyncBaseTransport)
        router = client._transport.router  # type: ignore[attr-defined]
        assert states(router) == ["failed", "active"]
    assert response.status_code == 200
    assert HEDGE <= elapsed < UNHEDGED / 2
    assert len(bot_api.calls) == 1


# --- the race itself, with tunnels that are ready exactly when a test says -------------------


async def test_tunnels_ready_at_the_same_moment_only_one_is_used(
    scripted_tunnels: dict[str, Any],
) -> None:
    """When the hedged route and the primary are ready in the same instant, one tunnel is
    returned (the higher-priority one) and the other is closed unused."""
    scripted_tunnels["ready"].update({0: "gate", 1: "gate"})
    router = fake_router(scripted_tunnels, 2, hedge=0.05)
    connecting = asyncio.ensure_future(router.connect("api.example", 443))
    await asyncio.sleep(0.2)  # both routes are connecting now
    scripted_tunnels["gate"].set()  # and both are ready in the same turn of the loop
    tunnel = await connecting
    opened = scripted_tunnels["opened"]
    assert sorted(t.index for t in opened) == [0, 1]
    assert tunnel is next(t for t in opened if t.index == 0)
    assert [t.index for t in opened if t.closed] == [1]
    assert router.active == 0
    await router.close()


async def test_loser_is_cancelled_and_the_winner_becomes_active(
    scripted_tunnels: dict[str, Any],
) -> None:
    """A primary that never connects is cancelled once the hedged route is ready; the hedged
    route becomes active and the primary failed, with what it was waiting for."""
    scripted_tunnels["ready"].update({0: None, 1: 0.05})
    router = fake_router(scripted_tunnels, 2, hedge=0.1)
    started = time.monotonic()
    tunnel = await router.connect("api.example", 443)
    elapsed = time.monotonic() - started
    assert isinstance(tunnel, FakeTunnel)
    assert tunnel.index == 1
    assert not tunnel.closed
    assert 0.15 <= elapsed < 5 / 2  # not the connect timeout
    assert scripted_tunnels["cancelled"] == [0]
    assert (router.active, states(router)) == (1, ["failed", "active"])
    error = router.route_status()[0].last_error or ""
    assert re.match(
        r"no tunnel after \d+\.\d s \(hop 1 of 1 \(socks5://127.0.0.1:1001\) had", error
    )
    assert error.endswith("route fallback[0] was ready first (fallback_hedge_after: 0.1 s)")
    await router.close()


async def test_cancelled_connect_leaves_no_attempt_running(
    scripted_tunnels: dict[str, Any],
) -> None:
    """A connect cancelled while two routes are connecting cancels both attempts."""
    scripted_tunnels["ready"].update({0: None, 1: None})
    router = fake_router(scripted_tunnels, 2, hedge=0.05)
    connecting = asyncio.ensure_future(router.connect("api.example", 443))
    await asyncio.sleep(0.2)
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await connecting
    assert sorted(scripted_tunnels["cancelled"]) == [0, 1]
    pending = [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") == "Router._attempt"
    ]
    assert pending == []
    await router.close()


async def test_standby_routes_are_tried_before_failed_ones(
    scripted_tunnels: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the primary recovers while fallback 1 is still failing, the order of a connect is
    the primary, then fallback 2 (standby), then fallback 1 (failed)."""
    monkeypatch.setattr(routing, "FIRST_CHECK_AFTER", 0.05)
    ready = scripted_tunnels["ready"]
    ready.update({0: "fail", 1: "fail", 2: 0.01})
    router = fake_router(scripted_tunnels, 3, hedge=None, retry=0.1)
    assert router.order() == [0, 1, 2]
    tunnel = await router.connect("api.example", 443)
    assert (tunnel.index, states(router)) == (2, ["failed", "failed", "active"])
    ready[0] = 0.01  # the primary works again; fallback 1 does not
    await until(lambda: router.active == 0, PATIENT)
    assert states(router) == ["active", "failed", "standby"]
    assert router.order() == [0, 2, 1]
    await router.close()


def test_hedge_setting_defaults_and_validation() -> None:
    """fallback_hedge_after defaults to 2 s with fallbacks (half a shorter connect_timeout), is
    off without them, and must be shorter than connect_timeout."""
    from botsession import ConfigError

    primary, backup = "socks5://127.0.0.1:1", "socks5://127.0.0.1:2"
    assert load_config(proxy=primary, fallback=[backup]).fallback_hedge_after == 2
    assert (
        load_config(proxy=primary, fallback=[backup], connect_timeout=3).fallback_hedge_after == 1.5
    )
    assert load_config(proxy=primary).fallback_hedge_after is None
    assert (
        load_config(
            proxy=primary, fallback=[backup], fallback_hedge_after=None
        ).fallback_hedge_after
        is None
    )
    with pytest.raises(
        ConfigError, match="fallback_hedge_after must be shorter than connect_timeout"
    ):
        load_config(proxy=primary, fallback=[backup], connect_timeout=2, fallback_hedge_after=2)
    with pytest.raises(ConfigError, match="fallback_hedge_after has no effect without fallback"):
        load_config(proxy=primary, fallback_hedge_after=1)
    with pytest.raises(ConfigError, match="expected greater than 0"):
        load_config(proxy=primary, fallback=[backup], fallback_hedge_after=0)


async def test_route_status_never_shows_a_password(
    bot_api: BotApiStandIn, proxy: ProxyFactory, fault_proxy: FaultProxyFactory
) -> None:
    """route_status names the hops with passwords masked, in every field."""
    guarded = proxy("socks5", "u", SENTINEL)
    primary = silent(fault_proxy)
    wrong = f"socks5://bob:{SENTINEL}@127.0.0.1:{primary.port}"
    session = session_for(bot_api, wrong, fallback=[guarded.url()], fallback_hedge_after=HEDGE)
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()
        statuses = session.route_status()
    text = " ".join(f"{status} {status.as_dict()}" for status in statuses)
    assert SENTINEL not in text
    assert f"socks5://bob:***@127.0.0.1:{primary.port}" in text
    assert statuses[1].route == f"socks5://u:***@127.0.0.1:{guarded.port}"


async def test_an_attempt_younger_than_the_hedge_delay_is_not_failed_by_the_winner(
    scripted_tunnels: dict[str, Any],
) -> None:
    """A primary ready shortly after the hedge delay wins; the fallback, started at the hedge
    delay and still connecting for less than it, is cancelled but stays standby."""
    scripted_tunnels["ready"].update({0: 0.4, 1: None})
    router = fake_router(scripted_tunnels, 2, hedge=0.3)
    tunnel = await router.connect("api.example", 443)
    assert isinstance(tunnel, FakeTunnel)
    assert tunnel.index == 0
    assert scripted_tunnels["cancelled"] == [1]
    assert states(router) == ["active", "standby"]
    assert router.route_status()[1].last_error is None
    await router.close()


async def test_a_primary_whose_first_step_comes_late_still_gets_its_full_hedge_delay(
    scripted_tunnels: dict[str, Any],
) -> None:
    """On a machine so busy that the primary's attempt first runs after the hedge delay, the
    fallback starts only a full delay after the primary began, and wins with the primary
    failed (not standby beside a silent primary that stays active)."""
    scripted_tunnels["ready"].update({0: None, 1: 0.01})
    router = fake_router(scripted_tunnels, 2, hedge=0.1)
    connecting = asyncio.ensure_future(router.connect("api.example", 443))
    await asyncio.sleep(0)  # the race has created the primary's attempt, which has not run yet
    time.sleep(0.3)  # noqa: ASYNC251 - the event loop is held up, as on a busy machine
    tunnel = await connecting
    assert tunnel.index == 1
    assert scripted_tunnels["cancelled"] == [0]
    assert (router.active, states(router)) == (1, ["failed", "active"])
    assert (router.route_status()[0].last_error or "").endswith(
        "route fallback[0] was ready first (fallback_hedge_after: 0.1 s)"
    )
    await router.close()


async def test_a_losing_attempt_that_began_before_the_route_worked_again_does_not_fail_it(
    scripted_tunnels: dict[str, Any],
) -> None:
    """A primary attempt that lost the race but began before a later check found the primary
    working says nothing new: the primary stays active (a flapping primary that just came back
    is not failed by a connect from its silent spell)."""
    scripted_tunnels["ready"].update({0: None, 1: 0.3})
    router = fake_router(scripted_tunnels, 2, hedge=0.1)
    connecting = asyncio.ensure_future(router.connect("api.example", 443))
    await asyncio.sleep(0.2)  # the primary's attempt has run past the hedge delay
    router._route_worked(0, None)  # as a background check that found it working does
    tunnel = await connecting
    assert tunnel.index == 1
    assert (router.active, states(router)) == (0, ["active", "standby"])
    assert router.route_status()[0].last_error is None
    await router.close()


async def test_a_connect_while_the_primary_keeps_another_waiting_starts_with_the_fallback(
    scripted_tunnels: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a connect through the primary has waited far longer than the primary's last
    connect took (it went silent), a new connect does not pile onto it: it starts with the
    fallback at once, and the waiting one still decides the primary's fate."""
    monkeypatch.setattr(routing, "DOUBT_FLOOR", 0.1)
    ready = scripted_tunnels["ready"]
    ready.update({0: 0.01, 1: 0.01})
    router = fake_router(scripted_tunnels, 2, hedge=PATIENT / 4, connect_timeout=PATIENT)
    assert (await router.connect("api.example", 443)).index == 0  # its pace: about 10 ms
    ready[0] = None  # the primary goes silent
    waiting = asyncio.ensure_future(router.connect("api.example", 443))
    assert await until(lambda: scripted_tunnels["dialled"] == [0, 0], PATIENT)
    await asyncio.sleep(0.2)  # twice the doubt floor: the primary is in doubt
    assert router.order() == [1, 0]
    tunnel = await router.connect("api.example", 443)
    assert tunnel.index == 1
    assert scripted_tunnels["dialled"] == [0, 0, 1]  # nothing more for the primary
    assert states(router) == ["active", "standby"]  # not failed: the waiting one decides
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert router.order() == [0, 1]  # nothing waits on it any more: no doubt
    await router.close()


async def test_cancelled_losers_end_without_an_error_in_the_event_loop(
    scripted_tunnels: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Losers cancelled after the winner is ready end quietly: no "exception in callback"
    reaches asyncio's log."""
    scripted_tunnels["ready"].update({0: None, 1: None, 2: 0.05})
    router = fake_router(scripted_tunnels, 3, hedge=0.05)
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        tunnel = await router.connect("api.example", 443)
        await asyncio.sleep(0.05)  # the done callbacks of the losers have run
    assert tunnel.index == 2
    assert sorted(scripted_tunnels["cancelled"]) == [0, 1]
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
    await router.close()


async def test_all_routes_failed_is_caused_by_the_last_failure(
    scripted_tunnels: dict[str, Any],
) -> None:
    """When every route fails, the error lists each failure in order and its cause is the last
    one (the traceback ends with it)."""
    scripted_tunnels["ready"].update({0: "fail", 1: "fail", 2: "fail"})
    router = fake_router(scripted_tunnels, 3, hedge=0.05)
    with pytest.raises(AllRoutesFailedError) as caught:
        await router.connect("api.example", 443)
    failures = caught.value.failures
    assert [(number, error.hop) for number, error in failures] == [
        (1, "socks5://127.0.0.1:1001"),
        (2, "socks5://127.0.0.1:1002"),
        (3, "socks5://127.0.0.1:1003"),
    ]
    assert caught.value.__cause__ is failures[-1][1]
    await router.close()


async def test_a_connect_cancelled_while_its_losers_end_closes_the_winner(
    scripted_tunnels: dict[str, Any],
) -> None:
    """Cancelled after a route won but before the losers have ended, a connect closes the
    winner's tunnel: no tunnel is left that nobody will use."""
    scripted_tunnels["ready"].update({0: "lingering", 1: 0.05})
    router = fake_router(scripted_tunnels, 2, hedge=0.02)
    connecting = asyncio.ensure_future(router.connect("api.example", 443))
    assert await until(lambda: scripted_tunnels["cancelled"] == [0], PATIENT)
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await connecting
    [winner] = scripted_tunnels["opened"]
    assert (winner.index, winner.closed) == (1, True)
    await router.close()
