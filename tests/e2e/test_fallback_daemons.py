"""Fallback routes through the real daemons: the backup route is a real proxy."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError

from ..failover_support import until
from ..servers import BotApiStandIn
from ..support import PATIENT, SENTINEL, TOKEN, free_port, get_me, session_for
from .daemons import RunningProxy


async def test_daemons_dead_primary_then_dante(bot_api: BotApiStandIn, dante: RunningProxy) -> None:
    """Primary dead: Dante (the fallback) serves at once, not after connect_timeout, one request
    per call."""
    before = len(dante.destinations())
    session = session_for(
        bot_api,
        f"socks5://127.0.0.1:{free_port()}",
        fallback=[dante.url("socks5")],
        connect_timeout=PATIENT,
        fallback_hedge_after=PATIENT / 2,
    )
    started = time.monotonic()
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()
        await bot.get_me()
        assert "connection refused" in (session.route_status()[0].last_error or "")
    assert time.monotonic() - started < PATIENT / 2
    assert [call.method for call in bot_api.calls] == ["getMe", "getMe"]
    assert dante.wait_for_destination(bot_api.port)
    assert dante.destinations()[before:] == [("127.0.0.1", bot_api.port)]


async def test_daemons_all_routes_dead(
    bot_api: BotApiStandIn, dante: RunningProxy, micro: RunningProxy
) -> None:
    """Every route failing (dead hop behind Dante, wrong microsocks password) is one error naming both."""
    dead = free_port()
    wrong = micro.url("socks5", credentials=False).replace("socks5://", "socks5://mia:nope@")
    session = session_for(
        bot_api, [dante.url("socks5"), f"socks5://127.0.0.1:{dead}"], fallback=[wrong]
    )
    with pytest.raises(TelegramNetworkError) as caught:
        await get_me(session)
    message = str(caught.value)
    assert (
        f"route proxy (socks5://127.0.0.1:{dante.port} → socks5://127.0.0.1:{dead}): proxy hop 1 of 2"
        in message
    )
    assert (
        f"route fallback[0] (socks5://mia:***@127.0.0.1:{micro.port}): proxy hop 1 of 1" in message
    )
    assert "nope" not in message
    assert bot_api.calls == []


async def test_daemons_primary_comes_back(
    bot_api: BotApiStandIn, dante: RunningProxy, tmp_path: Path
) -> None:
    """A microsocks primary that starts later is found by a background check (a tunnel, no
    request) within the retry interval, and the next request goes through it."""
    from . import daemons

    bot_api.close_connections = True
    port = free_port()
    primary = f"socks5://mia:{SENTINEL}@127.0.0.1:{port}"
    session = session_for(
        bot_api, primary, fallback=[dante.url("socks5")], fallback_retry_primary_after=1.0
    )
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()
        with daemons.microsocks(tmp_path / "late", "mia", SENTINEL, port=port) as late:
            await until(lambda: session.route_status()[0].state == "active", PATIENT)
            assert [status.state for status in session.route_status()] == ["active", "standby"]
            assert len(bot_api.calls) == 1  # the check sent no request
            await bot.get_me()
            # the check's tunnel, then the request's (microsocks' log may lag a little)
            await until(lambda: len(late.destinations()) >= 2, PATIENT)
            assert late.destinations() == [("127.0.0.1", bot_api.port)] * 2
    assert len(bot_api.calls) == 2
