"""Routes that heal: a failed route is checked in the background (a tunnel, no request), traffic
returns to it once it works, and the checks belong to the session: close() ends them."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError

from botsession import AiohttpSession, RouteStatus, build_client_session
from botsession.httpx_transport import build_httpx_client, build_httpx_transport
from botsession.net import routing
from botsession.net.connector import RouteConnector
from botsession.ptb import build_ptb_request

from .conftest import ProxyFactory
from .failover_support import UNHEDGED, states, until
from .faultproxy import FaultProxyFactory
from .servers import BotApiStandIn, InProcessProxy
from .support import PATIENT, SENTINEL, TOKEN, free_port, open_fds, session_for, settle

RETRY = 1.0
"""fallback_retry_primary_after of most tests here (its floor): checks at most this far apart."""


def check_tasks() -> list[asyncio.Task[object]]:
    """The background checks of every router in this event loop."""
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") == "Router._check"
    ]


def with_a_dead_primary(
    bot_api: BotApiStandIn, proxy: ProxyFactory, retry_primary_after: float | None = RETRY
) -> tuple[int, InProcessProxy, AiohttpSession]:
    """An aiogram session whose primary route is a socks5 proxy on a free port (dead until the
    test starts one there) and whose fallback is a working socks5 proxy; the port, the fallback
    proxy and the session."""
    port = free_port()
    backup = proxy("socks5")
    session = session_for(
        bot_api,
        f"socks5://127.0.0.1:{port}",
        fallback=[backup.url()],
        fallback_retry_primary_after=retry_primary_after,
    )
    return port, backup, session


async def test_recovered_primary_takes_the_traffic_back_without_a_request(
    bot_api: BotApiStandIn,
    proxy: ProxyFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A primary that comes back is found by a background check — a tunnel to the Bot API host,
    no request — within fallback_retry_primary_after, and the next request goes through it."""
    # Checks come fallback_retry_primary_after apart at most, however long the first wait.
    monkeypatch.setattr(routing, "FIRST_CHECK_AFTER", PATIENT)
    bot_api.close_connections = True
    port, backup, session = with_a_dead_primary(bot_api, proxy)
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()  # the primary is dead: the fallback serves
        assert states(session) == ["failed", "active"]
        primary = proxy("socks5", port=port)  # the primary comes back
        assert await until(lambda: states(session) == ["active", "standby"], PATIENT / 2)
        assert len(bot_api.calls) == 1  # the check sent no request...
        assert primary.destinations == [("127.0.0.1", bot_api.port)]  # ...to the Bot API host
        await bot.get_me()
    assert len(primary.destinations) == 2
    assert len(backup.destinations) == 1
    assert len(bot_api.calls) == 2
    assert caplog.messages[-1] == (
        f"route proxy (socks5://127.0.0.1:{port}) works again; switched back to it"
    )


async def test_checks_back_off_while_the_route_stays_down(
    bot_api: BotApiStandIn,
    proxy: ProxyFactory,
    fault_proxy: FaultProxyFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A route that stays down is checked at doubling intervals, never further apart than
    fallback_retry_primary_after, each counted from when the last connect through it began."""
    monkeypatch.setattr(routing, "FIRST_CHECK_AFTER", 0.05)
    intervals: list[float] = []  # each check's interval, as the router scheduled it
    dialled: list[float] = []  # when the failed connect it counts from began
    check = routing.Router._check

    async def timed_check(router: routing.Router, index: int, wait: float) -> None:
        health = router._health[index]
        intervals.append(health.interval)
        dialled.append(health.dialled_at)
        await check(router, index, wait)

    monkeypatch.setattr(routing.Router, "_check", timed_check)
    primary, backup = fault_proxy("socks5", step="greeting", fault="close"), proxy("socks5")
    session = session_for(
        bot_api, primary.url(), fallback=[backup.url()], fallback_retry_primary_after=RETRY
    )
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()
        assert await until(lambda: len(dialled) >= 8, PATIENT)
        assert states(session) == ["failed", "active"]
    assert intervals[:7] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    shortest = 1 - routing.CHECK_JITTER  # each wait is shortened by up to a fifth
    gaps = [later - earlier for earlier, later in itertools.pairwise(dialled[:8])]
    assert all(
        gap > interval * shortest - 0.001 for gap, interval in zip(gaps, intervals[:7], strict=True)
    )
    assert primary.accepted >= 1 + 7  # the request, then a connection per check
    assert len(bot_api.calls) == 1


async def test_a_silent_route_is_checked_an_interval_after_its_connect_began(
    bot_api: BotApiStandIn,
    proxy: ProxyFactory,
    fault_proxy: FaultProxyFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A route that failed by staying silent through the hedge delay gets its first check one
    interval after that connect began: the wait it cost is not added on top."""
    monkeypatch.setattr(routing, "FIRST_CHECK_AFTER", PATIENT)  # no check runs in the test
    monkeypatch.setattr(routing, "jittered", lambda interval: interval)
    waits: list[float] = []
    check = routing.Router._check

    async def recorded_check(router: routing.Router, index: int, wait: float) -> None:
        waits.append(wait)
        await check(router, index, wait)

    monkeypatch.setattr(routing.Router, "_check", recorded_check)
    hedge = 0.5
    silent, backup = fault_proxy("socks5", step="greeting", fault="stall"), proxy("socks5")
    session = session_for(
        bot_api,
        silent.url(),
        fallback=[backup.url()],
        fallback_hedge_after=hedge,
        fallback_retry_primary_after=None,
    )
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()
        assert await until(lambda: len(waits) == 1, PATIENT)
        assert states(session) == ["failed", "active"]
    assert waits[0] <= PATIENT - hedge  # the silent connect had waited the hedge delay


async def test_flapping_primary_route_states_over_time(
    bot_api: BotApiStandIn, proxy: ProxyFactory, fault_proxy: FaultProxyFactory
) -> None:
    """A primary that goes silent and comes back: traffic hedges to the fallback, returns after
    a check, and every request reaches the server exactly once."""
    bot_api.close_connections = True
    primary, backup = fault_proxy("socks5", step="greeting", fault="pass"), proxy("socks5")
    session = session_for(
        bot_api,
        primary.url(),
        fallback=[backup.url()],
        fallback_hedge_after=0.2,
        fallback_retry_primary_after=RETRY,
    )
    timeline: list[list[str]] = []

    def note() -> None:
        if not timeline or timeline[-1] != states(session):
            timeline.append(states(session))

    async with Bot(TOKEN, session=session) as bot:
        for round_ in range(2):
            await bot.get_me()  # through the primary
            note()
            primary.fault = "stall"  # the primary goes silent
            started = time.monotonic()
            await bot.get_me()
            assert time.monotonic() - started < UNHEDGED / 2, round_  # hedged
            note()
            await bot.get_me()  # straight to the fallback now
            primary.fault = "pass"  # and it comes back
            assert await until(lambda: states(session)[0] == "active", PATIENT)
            note()
    healthy, hedged = ["active", "standby"], ["failed", "active"]
    assert timeline == [healthy, hedged, healthy, hedged, healthy]
    assert [call.method for call in bot_api.calls] == ["getMe"] * 6
    assert len(backup.destinations) == 4


async def test_without_retry_primary_after_traffic_stays_on_the_fallback(
    bot_api: BotApiStandIn, proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fallback_retry_primary_after: null keeps the traffic where it is; the recovered primary
    is reported as standby."""
    monkeypatch.setattr(routing, "FIRST_CHECK_AFTER", 0.1)
    bot_api.close_connections = True
    port, backup, session = with_a_dead_primary(bot_api, proxy, retry_primary_after=None)
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()
        primary = proxy("socks5", port=port)
        await until(lambda: states(session)[0] != "failed", PATIENT)
        assert states(session) == ["standby", "active"]
        await bot.get_me()
    assert len(backup.destinations) == 2
    assert primary.destinations == [("127.0.0.1", bot_api.port)]  # the check only


async def test_idle_connection_through_the_fallback_is_not_reused_after_the_return(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """When traffic returns to the primary, a kept-alive connection through the fallback is
    closed rather than reused: the very next request goes through the primary."""
    port, backup, session = with_a_dead_primary(bot_api, proxy)
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()  # through the fallback; the connection stays open for reuse
        primary = proxy("socks5", port=port)
        assert await until(lambda: states(session)[0] == "active", PATIENT)
        assert len(primary.destinations) == 1  # the check
        await bot.get_me()
        assert len(primary.destinations) == 2  # a new connection through the primary
        await bot.get_me()  # which is kept alive and reused in turn
    assert len(primary.destinations) == 2
    assert len(backup.destinations) == 1
    assert len(bot_api.calls) == 3


async def test_busy_connection_through_the_old_route_is_closed_after_its_response(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A request in flight through the fallback when the primary returns completes; its
    connection then goes back to no pool, so later requests all take the primary."""
    port, backup, session = with_a_dead_primary(bot_api, proxy)
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()
        bot_api.delay = 30  # the next answer waits for release()
        slow = asyncio.ensure_future(bot.get_me())
        await until(lambda: bot_api.in_flight == 1, PATIENT)
        primary = proxy("socks5", port=port)
        assert await until(lambda: states(session)[0] == "active", PATIENT)
        bot_api.delay = 0
        await bot.get_me()  # through the primary, while the slow one still waits
        bot_api.release()
        await slow  # it completes through the fallback, and its connection is closed
        await asyncio.gather(bot.get_me(), bot.get_me())  # two connections: both via primary
    assert len(backup.destinations) == 1
    assert len(primary.destinations) == 3  # the check, then two connections
    assert len(bot_api.calls) == 5


async def test_route_status_tells_state_error_time_and_hop_times(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """route_status gives each route's name, state, last error, when the state changed and the
    time of each hop (a two-hop chain has two)."""
    bot_api.close_connections = True
    first, second = proxy("socks5"), proxy("http")
    dead = free_port()
    before = datetime.now(UTC)
    session = session_for(
        bot_api,
        [first.url(), second.url()],
        fallback=[f"socks5://127.0.0.1:{dead}"],
        fallback_retry_primary_after=RETRY,
    )
    [primary, fallback] = session.route_status()
    assert (primary.name, primary.state, primary.last_error) == ("proxy", "active", None)
    assert (fallback.name, fallback.state) == ("fallback[0]", "standby")
    assert primary.hop_seconds == (None, None)
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()
        [primary, fallback] = session.route_status()
        assert primary.state == "active"
        assert len(primary.hop_seconds) == 2
        assert all(seconds is not None and 0 < seconds < 1 for seconds in primary.hop_seconds)
        assert before - timedelta(seconds=1) <= primary.changed_at <= datetime.now(UTC)
        first.stop()  # the primary's first hop goes away
        failed_at = datetime.now(UTC)
        with pytest.raises(TelegramNetworkError):
            await bot.get_me()  # the fallback is dead too: both fail
    statuses = session.route_status()
    assert [status.state for status in statuses] == ["failed", "failed"]
    assert "connection refused" in (statuses[0].last_error or "")
    assert statuses[0].changed_at >= failed_at - timedelta(milliseconds=50)
    assert statuses[0].as_dict()["state"] == "failed"
    assert str(statuses[1]).startswith("route fallback[0] failed since ")


@pytest.mark.parametrize("client", ["aiogram", "aiohttp", "ptb", "httpx"])
async def test_every_client_reports_route_status(
    bot_api: BotApiStandIn, proxy: ProxyFactory, client: str
) -> None:
    """Every client tells its routes' health the same way, with route_status(): the aiogram
    session, the plain session's connector, the PTB request and the httpx transport. A refused
    primary is failed, its error naming the hop with the password masked, and the fallback
    that served is active."""
    backup = proxy("socks5")
    primary = f"socks5://u:{SENTINEL}@127.0.0.1:{free_port()}"
    settings: dict[str, Any] = {"proxy": primary, "fallback": [backup.url()]}
    url = f"{bot_api.base}/bot{TOKEN}/getMe"
    statuses: tuple[RouteStatus, ...]
    if client == "aiogram":
        session = session_for(bot_api, primary, fallback=[backup.url()])
        async with Bot(TOKEN, session=session) as bot:
            await bot.get_me()
            statuses = session.route_status()
    elif client == "aiohttp":
        async with build_client_session(**settings) as plain:
            await (await plain.post(url)).read()
            assert isinstance(plain.connector, RouteConnector)
            statuses = plain.connector.route_status()
    elif client == "ptb":
        request = build_ptb_request(api={"base": bot_api.base}, **settings)
        assert [status.state for status in request.route_status()] == ["active", "standby"]
        async with request:
            await request.post(url)
            statuses = request.route_status()
        assert request.route_status() == statuses  # shut down: the state they were last in
    else:
        transport = build_httpx_transport(**settings)
        async with httpx.AsyncClient(transport=transport) as http:
            (await http.post(url)).raise_for_status()
            statuses = transport.route_status()
    assert [status.state for status in statuses] == ["failed", "active"]
    assert f"proxy hop 1 of 1 (socks5://u:***@127.0.0.1:{primary.rsplit(':', 1)[1]})" in (
        statuses[0].last_error or ""
    )
    assert "refused" in (statuses[0].last_error or "")
    assert SENTINEL not in repr(statuses) + "".join(map(str, statuses))
    assert len(bot_api.calls) == 1


async def test_all_routes_dead_then_a_fallback_returns_becomes_active(
    bot_api: BotApiStandIn, proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When every route failed, the first one a check finds working becomes active, even a
    fallback and even with fallback_retry_primary_after: null."""
    monkeypatch.setattr(routing, "FIRST_CHECK_AFTER", 0.1)
    dead_primary, dead_backup = free_port(), free_port()
    session = session_for(
        bot_api,
        f"socks5://127.0.0.1:{dead_primary}",
        fallback=[f"socks5://127.0.0.1:{dead_backup}"],
        fallback_retry_primary_after=None,
    )
    async with Bot(TOKEN, session=session) as bot:
        with pytest.raises(TelegramNetworkError):
            await bot.get_me()
        assert states(session) == ["failed", "failed"]
        backup = proxy("socks5", port=dead_backup)
        assert await until(lambda: states(session) == ["failed", "active"], PATIENT)
        await bot.get_me()
    assert len(backup.destinations) == 2  # the check and the request
    assert len(bot_api.calls) == 1


# --- the checks belong to the session -----------------------------------------------------


async def test_aiogram_session_close_stops_the_checks_and_a_new_request_resumes_them(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """Building a session starts nothing; a failure starts a check; close() ends it, sockets
    included; used again, the session checks the still-failed route again."""
    backup = proxy("socks5")
    baseline_fds = open_fds()
    session = session_for(bot_api, f"socks5://127.0.0.1:{free_port()}", fallback=[backup.url()])
    assert check_tasks() == []
    bot = Bot(TOKEN, session=session)
    await bot.get_me()
    assert len(check_tasks()) == 1
    await session.close()
    assert check_tasks() == []
    await bot.get_me()  # aiogram opens a new aiohttp session on the same routes
    assert len(check_tasks()) == 1
    await session.close()
    assert check_tasks() == []
    assert await settle(baseline_fds) <= baseline_fds


@pytest.mark.parametrize("client", ["aiohttp", "ptb", "httpx"])
async def test_every_client_close_stops_the_checks(
    bot_api: BotApiStandIn, proxy: ProxyFactory, fault_proxy: FaultProxyFactory, client: str
) -> None:
    """Closing a plain aiohttp session, a PTB request or an httpx client ends a check even in
    the middle of its tunnel through a silent route; no socket is left open."""
    silent_primary, backup = fault_proxy("socks5", step="greeting", fault="stall"), proxy("socks5")
    baseline_fds = open_fds()
    settings = {
        "proxy": silent_primary.url(),
        "fallback": [backup.url()],
        "fallback_hedge_after": 0.1,
        "fallback_retry_primary_after": RETRY,
    }
    url = f"{bot_api.base}/bot{TOKEN}/getMe"
    if client == "aiohttp":
        async with build_client_session(**settings) as session:
            await (await session.post(url)).read()
            await until(lambda: silent_primary.accepted >= 2, PATIENT)  # a check is connecting
            assert len(check_tasks()) == 1
    elif client == "ptb":
        request = build_ptb_request(api={"base": bot_api.base}, **settings)
        await request.initialize()
        await request.post(url)
        await until(lambda: silent_primary.accepted >= 2, PATIENT)
        assert len(check_tasks()) == 1
        await request.shutdown()
    else:
        async with build_httpx_client(**settings) as http:
            (await http.post(url)).raise_for_status()
            await until(lambda: silent_primary.accepted >= 2, PATIENT)
            assert len(check_tasks()) == 1
    assert silent_primary.accepted >= 2
    assert check_tasks() == []
    assert await settle(baseline_fds) <= baseline_fds
    assert len(bot_api.calls) == 1


async def test_close_returns_once_the_checks_have_ended(
    bot_api: BotApiStandIn, proxy: ProxyFactory, fault_proxy: FaultProxyFactory
) -> None:
    """When a plain session's close() returns, its checks have ended — even with no connection
    left to close, which would otherwise return without giving the loop a turn."""
    bot_api.close_connections = True
    primary, backup = fault_proxy("socks5", step="greeting", fault="stall"), proxy("socks5")
    client = build_client_session(
        proxy=primary.url(),
        fallback=[backup.url()],
        fallback_hedge_after=0.1,
        fallback_retry_primary_after=RETRY,
    )
    await (await client.post(f"{bot_api.base}/bot{TOKEN}/getMe")).read()
    await until(lambda: primary.accepted >= 2, PATIENT)  # a check is connecting
    [check] = check_tasks()
    await client.close()
    assert check.done()


async def test_check_uses_the_configured_connect_timeout_not_the_call_that_found_the_failure(
    bot_api: BotApiStandIn, proxy: ProxyFactory, fault_proxy: FaultProxyFactory
) -> None:
    """A PTB request with its own connect timeout (5 s) finds the primary failing; the check
    that follows is the session's and gives up after the configured 0.3 s."""
    primary, backup = fault_proxy("socks5", step="greeting", fault="reset"), proxy("socks5")
    request = build_ptb_request(
        proxy=primary.url(),
        fallback=[backup.url()],
        connect_timeout=0.3,
        fallback_hedge_after=None,
        fallback_retry_primary_after=RETRY,
        api={"base": bot_api.base},
    )
    async with request:
        await request.post(f"{bot_api.base}/bot{TOKEN}/getMe", connect_timeout=PATIENT)
        primary.fault = "stall"  # the checks now meet a silent primary
        status = request.route_status
        # Not after the request's 30 s: after the configured 0.3 s.
        checked = "background check"
        assert await until(lambda: checked in (status()[0].last_error or ""), PATIENT / 2)
    assert "no answer within the 0.3 s connect timeout" in (status()[0].last_error or "")


def test_retry_primary_after_is_the_longest_check_interval_and_needs_fallbacks() -> None:
    """fallback_retry_primary_after defaults to 6 s, may be null, and alone is an error."""
    from botsession import ConfigError, load_config

    primary, backup = "socks5://127.0.0.1:1", "socks5://127.0.0.1:2"
    assert load_config(proxy=primary, fallback=[backup]).fallback_retry_primary_after == 6
    nulled = load_config(proxy=primary, fallback=[backup], fallback_retry_primary_after=None)
    assert nulled.fallback_retry_primary_after is None
    with pytest.raises(ConfigError, match="has no effect without fallback routes"):
        load_config(proxy=primary, fallback_retry_primary_after=5)


async def test_check_logs_nothing_above_debug_until_a_switch(
    bot_api: BotApiStandIn, proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Failed checks are DEBUG lines; only switches are WARNINGs (one per switch)."""
    caplog.set_level(logging.DEBUG, "botsession")
    dead = free_port()
    backup = proxy("socks5")
    session = session_for(
        bot_api,
        f"socks5://127.0.0.1:{dead}",
        fallback=[backup.url()],
        fallback_retry_primary_after=RETRY,
    )

    def failed_checks() -> list[str]:
        debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
        return [m for m in debug if m.startswith("route proxy still fails: background check")]

    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()
        assert await until(lambda: len(failed_checks()) >= 2, PATIENT)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1


# --- the command line uses the same words -------------------------------------------------


def test_show_names_the_failover_settings_and_the_start_states() -> None:
    """show ends with how the session fails over and the state each route starts in; --json
    has the states too."""
    import json

    from .test_cli import botsession

    env = {
        "BOT_PROXY": "socks5://127.0.0.1:1080",
        "BOT_FALLBACK": '["http://127.0.0.1:3128", "socks5://127.0.0.1:1081"]',
        "BOT_FALLBACK_RETRY_PRIMARY_AFTER": "30",
    }
    shown = botsession("show", env=env)
    assert shown.stdout.splitlines()[-1] == (
        "failover: hedge after 2 s; failed routes checked in the background from 6 s, doubling "
        "to 30 s; at start: proxy active, fallback[0] standby, fallback[1] standby"
    )
    document = json.loads(botsession("show", "--json", env=env).stdout)
    assert [entry["state"] for entry in document["route_states"]] == [
        "active",
        "standby",
        "standby",
    ]
    assert document["settings"]["fallback_hedge_after"] == {
        "value": 2.0,
        "source": "default",
        "kind": "default",
    }
    off = botsession("show", env={**env, "BOT_FALLBACK_HEDGE_AFTER": "null"})
    assert off.stdout.splitlines()[-1].startswith("failover: no hedging; ")
    single = botsession("show", env={"BOT_PROXY": "socks5://127.0.0.1:1080"})
    assert not single.stdout.splitlines()[-1].startswith("failover:")


@pytest.mark.parametrize(
    ("retry", "checks"),
    [
        ("6", "failed routes checked in the background every 6 s"),
        ("2", "failed routes checked in the background every 2 s"),
        (
            "null",
            "failed routes checked in the background from 6 s, doubling to 60 s; "
            "traffic stays on the route in use",
        ),
    ],
)
def test_show_states_the_cadence_of_checks_as_the_router_runs_them(retry: str, checks: str) -> None:
    """`show` tells the check cadence the router will use: flat up to the first interval, then
    doubling, and with `null` that traffic stays where it is."""
    from .test_cli import botsession

    env = {
        "BOT_PROXY": "socks5://127.0.0.1:1080",
        "BOT_FALLBACK": '["http://127.0.0.1:3128"]',
        "BOT_FALLBACK_RETRY_PRIMARY_AFTER": retry,
    }
    shown = botsession("show", env=env).stdout.splitlines()[-1]
    assert (
        shown == f"failover: hedge after 2 s; {checks}; at start: proxy active, fallback[0] standby"
    )


def test_probe_reports_the_states_a_session_would_start_with(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """probe with fallbacks ends with each route's state in route_status words: a broken
    primary failed (with why), the first working fallback active, the next standby."""
    import json

    from .test_cli import botsession

    first, second = proxy("socks5"), proxy("http")
    dead = free_port()
    env = {
        "BOT_PROXY": f"socks5://127.0.0.1:{dead}",
        "BOT_FALLBACK": json.dumps([first.url(), second.url()]),
        "BOT_API__BASE": bot_api.base,
    }
    result = botsession("probe", env=env)
    assert result.returncode == 3
    assert result.stdout.splitlines()[-4:] == [
        "route states (as a session would start now):",
        f"  proxy        failed   hop 1 of 1 (socks5://127.0.0.1:{dead}): connection "
        "refused; is the proxy running and listening there?",
        "  fallback[0]  active",
        "  fallback[1]  standby",
    ]


async def test_a_failed_attempt_records_the_time_of_the_hops_that_answered(
    bot_api: BotApiStandIn, proxy: ProxyFactory, fault_proxy: FaultProxyFactory
) -> None:
    """A chain whose second hop hangs up keeps the time its first hop took to answer, and no
    time for the second."""
    first, hanging_up = proxy("socks5"), fault_proxy("socks5", step="greeting", fault="close")
    backup = proxy("socks5")
    session = session_for(bot_api, [first.url(), hanging_up.url()], fallback=[backup.url()])
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()
        [primary, _] = session.route_status()
    assert primary.state == "failed"
    assert "proxy hop 2 of 2" in (primary.last_error or "")
    [answered, unanswered] = primary.hop_seconds
    assert answered is not None
    assert answered > 0
    assert unanswered is None
