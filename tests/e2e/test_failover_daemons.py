"""Failover with a real daemon as the fallback: a silent, refusing or flapping primary (the fault
proxy) in front of Dante or microsocks, through aiogram and the plain aiohttp client."""

from __future__ import annotations

import time

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession as AiogramSession
from aiogram.exceptions import TelegramNetworkError

from botsession import build_client_session

from ..failover_support import (
    UNHEDGED,
    Recorded,
    recorded,
    silent,
    states,
    until,
)
from ..faultproxy import FaultProxyFactory
from ..servers import BotApiStandIn
from ..support import LATE, PATIENT, TOKEN, free_port, session_for
from .daemons import RunningProxy


class Watch:
    """The destinations a daemon logs from now on (the daemons are shared by all tests)."""

    def __init__(self, daemon: RunningProxy) -> None:
        self.daemon = daemon
        self.before = len(daemon.destinations())

    def new(self, port: int, count: int) -> list[tuple[str, int]]:
        deadline = time.monotonic() + 5
        while len(self.daemon.destinations()) - self.before < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return [d for d in self.daemon.destinations()[self.before :] if d[1] == port]


async def test_silent_primary_dante_fallback_first_request_in_two_seconds(
    bot_api: BotApiStandIn, dante: RunningProxy, fault_proxy: FaultProxyFactory
) -> None:
    """With the defaults, a silent primary and Dante as the fallback: aiogram's first request
    completes in the 2 s hedge delay plus Dante's connect time, the next ones at full speed,
    each reaching the server once; the metrics show the cancelled primary and the switch."""
    otel: Recorded = recorded()
    watch = Watch(dante)
    primary = silent(fault_proxy)
    bot_api.close_connections = True
    session = session_for(bot_api, primary.url(), fallback=[dante.url("socks5")])
    async with Bot(TOKEN, session=session) as bot:
        started = time.monotonic()
        await bot.get_me()
        first = time.monotonic() - started
        for _ in range(5):
            await bot.get_me()
        assert states(session) == ["failed", "active"]
    assert session.config.connect_timeout == UNHEDGED
    assert 2 <= first < UNHEDGED / 2  # hedged: not the connect timeout
    assert [call.method for call in bot_api.calls] == ["getMe"] * 6
    assert watch.new(bot_api.port, 6) == [("127.0.0.1", bot_api.port)] * 6
    durations = {
        (p.attributes["botsession.route.index"], p.attributes.get("error.type")): p.count
        for p in otel.points("botsession.proxy.connect.duration")
    }
    # Full speed after the first: the primary was tried once, and never waited on again.
    assert durations == {(0, "cancelled"): 1, (1, None): 6}
    [switch] = otel.points("botsession.route.switches")
    assert (switch.value, switch.attributes["botsession.switch.reason"]) == (1, "hedged")


async def test_plain_client_without_hedging_waits_the_connect_timeout(
    bot_api: BotApiStandIn, dante: RunningProxy, fault_proxy: FaultProxyFactory
) -> None:
    """With hedging off, the same silent primary costs the whole connect timeout before Dante
    serves: what hedging saves."""
    primary = silent(fault_proxy)
    async with build_client_session(
        proxy=primary.url(),
        fallback=[dante.url("socks5")],
        connect_timeout=3,
        fallback_hedge_after=None,
    ) as client:
        started = time.monotonic()
        async with client.post(f"{bot_api.base}/bot{TOKEN}/getMe") as response:
            assert response.status == 200
        first = time.monotonic() - started
        assert states(client.connector) == ["failed", "active"]
    assert 3 <= first < 3 + LATE
    assert len(bot_api.calls) == 1


async def test_refusing_then_flapping_primary_with_microsocks_fallback(
    bot_api: BotApiStandIn, micro: RunningProxy, fault_proxy: FaultProxyFactory
) -> None:
    """A primary that refuses (reset), recovers, and goes silent: the states follow — failed,
    active again after a check, failed — and each request reaches the server exactly once."""
    watch = Watch(micro)
    primary = fault_proxy("socks5", step="greeting", fault="reset")
    bot_api.close_connections = True
    session = session_for(
        bot_api,
        primary.url(),
        fallback=[micro.url("socks5")],
        fallback_hedge_after=0.3,
        fallback_retry_primary_after=1.0,
    )
    otel: Recorded = recorded()
    seen: list[list[str]] = []
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()  # reset at once: microsocks serves without waiting for the hedge
        connects = {
            span.attributes["botsession.route.index"]: span
            for span in otel.spans()
            if span.name == "botsession.proxy.connect"
        }
        assert "botsession.hedged" not in connects[1].attributes  # started by the failure
        seen.append(states(session))
        primary.fault = "pass"
        assert await until(lambda: states(session)[0] == "active", PATIENT)
        seen.append(states(session))
        await bot.get_me()  # through the primary again
        primary.fault = "stall"
        await bot.get_me()  # hedged to microsocks
        seen.append(states(session))
    assert seen == [["failed", "active"], ["active", "standby"], ["failed", "active"]]
    assert [call.method for call in bot_api.calls] == ["getMe"] * 3
    assert watch.new(bot_api.port, 2) == [("127.0.0.1", bot_api.port)] * 2
    assert primary.destinations == [("127.0.0.1", bot_api.port)] * 2  # the check, a request


async def test_aiogram_own_session_has_no_failover_from_a_silent_proxy(
    bot_api: BotApiStandIn, fault_proxy: FaultProxyFactory
) -> None:
    """For comparison: aiogram's own session with a silent proxy waits its whole request
    timeout and fails (it has no fallback at all)."""
    primary = silent(fault_proxy)
    session = AiogramSession(proxy=primary.url(), timeout=2)
    session.api = session_for(bot_api, f"socks5://127.0.0.1:{free_port()}").api
    started = time.monotonic()
    async with Bot(TOKEN, session=session) as bot:
        with pytest.raises(TelegramNetworkError):
            await bot.get_me()
    assert 2 <= time.monotonic() - started < 2 + LATE
    assert bot_api.calls == []
