"""A primary that flaps (healthy, then silent, refusing or hanging up, then healthy again) in
front of a working fallback, with real aiogram calls: nothing is lost or sent twice, the primary
carries the traffic again as soon as it works, and a dead primary costs a bounded number of
connections. The long soak with figures is ``benchmarks/soak.py``."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiogram import Bot

from botsession.net import routing

from .failover_support import states, until
from .flapping import (
    FAULTS,
    FlappingRelay,
    Mode,
    PeerCountingApi,
    polling,
    source_bound_proxy,
    update,
)
from .servers import BackgroundLoop, InProcessProxy
from .support import PATIENT, TOKEN, session_for

PRIMARY_SOURCE, FALLBACK_SOURCE = "127.0.0.2", "127.0.0.3"
"""Where the primary's and the fallback's proxies connect to the server from."""
BATCH = 12
"""Requests sent at once in each phase."""
RETRY = 1.0
"""fallback_retry_primary_after of these tests: checks at most 1 s apart."""
DOWN_FOR = 2.0
"""How long the primary stays down with no request (seconds): only checks reach it then."""


@pytest.fixture
def counting_api(background: BackgroundLoop) -> Iterator[PeerCountingApi]:
    server = PeerCountingApi(background).start()
    yield server
    server.stop()


def source_proxy(background: BackgroundLoop, source: str) -> InProcessProxy:
    return source_bound_proxy(background, "socks5", source).start()


@pytest.mark.parametrize("tunnels", ["reset-by-the-fault", "one-per-request"])
@pytest.mark.parametrize("fault", FAULTS)
async def test_flapping_primary_loses_nothing_and_carries_the_traffic_again(
    fault: Mode,
    tunnels: str,
    background: BackgroundLoop,
    counting_api: PeerCountingApi,
) -> None:
    """Through a primary that goes down (``fault``) and comes back — its pooled tunnels reset
    as it goes down, or a new tunnel for every request — every sendMessage reaches the server
    exactly once; while it is down the fallback carries them, only checks (at most one per
    RETRY, jitter included) reach it when idle, and once it works again the primary carries
    every request."""
    reset_established = tunnels == "reset-by-the-fault"
    counting_api.close_connections = not reset_established
    upstream = source_proxy(background, PRIMARY_SOURCE)
    fallback = source_proxy(background, FALLBACK_SOURCE)
    relay = FlappingRelay(
        background, upstream.port, cycling=False, reset_established=reset_established
    ).start()
    keys = (f"m{n}" for n in itertools.count())
    session = session_for(
        counting_api,
        relay.url(),
        fallback=[fallback.url()],
        fallback_hedge_after=0.2,
        fallback_retry_primary_after=RETRY,
    )

    async def batch() -> list[str]:
        sent = [next(keys) for _ in range(BATCH)]
        await asyncio.gather(*(bot.send_message(chat_id=1, text=key) for key in sent))
        return sent

    def peers(sent: list[str]) -> set[str]:
        return {r.peer for r in counting_api.received if r.key in sent}

    try:
        async with Bot(TOKEN, session=session) as bot:
            assert peers(await batch()) == {PRIMARY_SOURCE}

            relay.set_mode(fault)
            # Requests come at once, before the event loop has read the resets of the pooled
            # tunnels (which are waiting in their sockets, as on a busy machine).
            time.sleep(0.05)  # noqa: ASYNC251 - the event loop must not run meanwhile
            assert peers(await batch()) == {FALLBACK_SOURCE}  # each needed a new tunnel
            assert states(session) == ["failed", "active"]

            before = relay.fault_accepts
            await asyncio.sleep(DOWN_FOR)
            checks = relay.fault_accepts - before
            assert 1 <= checks <= math.ceil(DOWN_FOR / (RETRY * (1 - routing.CHECK_JITTER)))

            relay.set_mode("healthy")
            assert await until(lambda: states(session) == ["active", "standby"], PATIENT)
            assert peers(await batch()) == {PRIMARY_SOURCE}  # the primary carries it again
    finally:
        relay.stop()
        upstream.stop()
        fallback.stop()
    received = [r.key for r in counting_api.received if r.key is not None]
    assert sorted(received) == sorted(f"m{n}" for n in range(3 * BATCH))  # each exactly once


UPDATES = 45
"""Updates pushed while the primary flaps."""
FLAP_PERIOD = 1.5
"""The relay's windows in the long-polling test (seconds): healthy, a fault, healthy, …"""


async def push_updates(api: PeerCountingApi, handled: list[int]) -> None:
    """Push UPDATES updates, one each 0.2 s, then wait until every one has been handled."""
    for number in range(1, UPDATES + 1):
        await asyncio.to_thread(api.push_update, update(number))
        await asyncio.sleep(0.2)
    await until(lambda: len(set(handled)) >= UPDATES, PATIENT)


@pytest.mark.parametrize("framework", ["aiogram", "ptb"])
async def test_long_polling_bot_through_a_flapping_primary_gets_every_update_once(
    framework: str, background: BackgroundLoop, counting_api: PeerCountingApi
) -> None:
    """A long-polling bot (aiogram's start_polling, PTB's Updater) whose primary flaps every
    FLAP_PERIOD through each fault, its tunnels reset at each, handles every update exactly
    once."""
    upstream = source_proxy(background, PRIMARY_SOURCE)
    fallback = source_proxy(background, FALLBACK_SOURCE)
    relay = FlappingRelay(
        background, upstream.port, period=FLAP_PERIOD, reset_established=True
    ).start()
    settings: dict[str, Any] = {
        "proxy": relay.url(),
        "fallback": [fallback.url()],
        "fallback_hedge_after": 0.2,
        "fallback_retry_primary_after": RETRY,
        "api": {"base": counting_api.base},
    }
    handled: list[int] = []
    try:
        async with polling(framework, settings, handled.append):
            await push_updates(counting_api, handled)
    finally:
        relay.stop()
        upstream.stop()
        fallback.stop()
    assert sorted(handled) == list(range(1, UPDATES + 1))  # each exactly once
    assert relay.resets >= 1  # established tunnels (the long polls among them) were reset
    assert relay.fault_accepts >= 1
