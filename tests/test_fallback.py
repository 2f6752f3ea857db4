"""Fallback routes: switch in the connect phase only, stick, come back to the primary."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError

from botsession import AllRoutesFailedError, ConfigError, build_client_session, load_config

from .conftest import ProxyFactory
from .servers import BotApiStandIn, SilentServer
from .support import LATE, SENTINEL, TOKEN, free_port, get_me, session_for


def switch_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "botsession" and r.levelno == logging.WARNING
    ]


async def test_dead_primary_is_replaced_by_the_fallback(
    bot_api: BotApiStandIn, proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused primary makes the request go through the first fallback, sent exactly once."""
    dead = free_port()
    backup = proxy("socks5", "u", SENTINEL)
    session = session_for(bot_api, f"socks5://127.0.0.1:{dead}", fallback=[backup.url()])
    me = await get_me(session)
    assert me.username == "standin_bot"
    assert len(bot_api.calls) == 1
    assert backup.destinations == [("127.0.0.1", bot_api.port)]
    [message] = switch_messages(caplog)
    assert message.startswith(f"route proxy (socks5://127.0.0.1:{dead}) failed: proxy hop 1 of 1")
    assert message.endswith(
        f"switched to route fallback[0] (socks5://u:***@127.0.0.1:{backup.port})"
    )
    assert SENTINEL not in caplog.text


async def test_silent_primary_falls_back_after_connect_timeout(
    bot_api: BotApiStandIn, proxy: ProxyFactory, silent_server: SilentServer
) -> None:
    """A primary that never answers costs one connect_timeout, then the fallback serves."""
    backup = proxy("http")
    session = session_for(
        bot_api,
        f"socks5://127.0.0.1:{silent_server.port}",
        fallback=[backup.url()],
        connect_timeout=0.5,
        fallback_hedge_after=None,  # hedged connects: tests/test_hedging.py
    )
    started = time.monotonic()
    await get_me(session)
    assert 0.45 < time.monotonic() - started < 0.5 + LATE  # with aiogram's 0.25 s close
    assert len(bot_api.calls) == 1
    assert silent_server.accepted == 1


async def test_active_route_sticks(
    bot_api: BotApiStandIn, proxy: ProxyFactory, silent_server: SilentServer
) -> None:
    """After a switch, new connections go straight to the fallback: the primary is not retried."""
    bot_api.close_connections = True  # every request needs a new connection
    first, second = proxy("socks5"), proxy("socks4")
    route = f"socks5://127.0.0.1:{silent_server.port}"
    session = session_for(bot_api, route, fallback=[first.url(), second.url()], connect_timeout=0.5)
    async with Bot(TOKEN, session=session) as bot:
        for _ in range(3):
            await bot.get_me()
    assert silent_server.accepted == 1  # the primary was not tried again after the first
    assert len(first.destinations) == 3
    assert second.destinations == []
    assert len(bot_api.calls) == 3


async def test_chain_of_fallbacks_is_tried_in_order(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """With two dead routes before it, the third route serves; each dead one is tried once."""
    last = proxy("socks5")
    dead = [free_port(), free_port()]
    session = session_for(
        bot_api,
        f"socks5://127.0.0.1:{dead[0]}",
        fallback=[f"http://127.0.0.1:{dead[1]}", [last.url()]],
    )
    await get_me(session)
    assert last.destinations == [("127.0.0.1", bot_api.port)]
    assert len(bot_api.calls) == 1


async def test_all_routes_dead_is_one_error_naming_each(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """When every route fails the caller gets one TelegramNetworkError listing each route's failure."""
    guarded = proxy("socks5", "u", "right")
    dead = free_port()
    wrong = {"url": guarded.url(credentials=False), "username": "u", "password": SENTINEL}
    session = session_for(bot_api, f"socks5://127.0.0.1:{dead}", fallback=[wrong])
    with pytest.raises(TelegramNetworkError) as caught:
        await get_me(session)
    message = str(caught.value)
    assert "AllRoutesFailedError: all 2 proxy routes failed: " in message
    assert (
        f"route proxy (socks5://127.0.0.1:{dead}): proxy hop 1 of 1 (socks5://127.0.0.1:{dead}): connection refused"
        in message
    )
    assert (
        f"route fallback[0] (socks5://u:***@127.0.0.1:{guarded.port}): proxy hop 1 of 1" in message
    )
    assert "rejected the credentials" in message
    assert SENTINEL not in message
    assert bot_api.calls == []


async def test_request_that_may_have_arrived_is_never_resent(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A failure after the request was sent is an error, not a retry through another route."""
    main, backup = proxy("socks5"), proxy("socks5")
    session = session_for(bot_api, main.url(), fallback=[backup.url()])
    async with Bot(TOKEN, session=session) as bot:
        with pytest.raises(TelegramNetworkError):
            await bot.send_message(chat_id=1, text="only once")
    assert [call.method for call in bot_api.calls] == ["sendMessage"]
    assert backup.destinations == []


async def test_plain_aiohttp_session_falls_back_too(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """build_client_session uses the same fallback logic."""
    backup = proxy("http")
    async with build_client_session(
        proxy=f"socks5://127.0.0.1:{free_port()}", fallback=[backup.url()]
    ) as client:
        async with client.post(f"{bot_api.base}/bot{TOKEN}/getMe") as response:
            assert response.status == 200
        with pytest.raises(AllRoutesFailedError) as caught:
            await client.get(f"http://127.0.0.1:{free_port()}/")
    assert [number for number, _ in caught.value.failures] == [2, 1]


def test_fallback_from_env_json_and_nested_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """BOT_FALLBACK is JSON; BOT_FALLBACK__0__PASSWORD completes a fallback written in YAML."""
    (tmp_path / "bot.yaml").write_text(
        "proxy: socks5://127.0.0.1:1\nfallback:\n  - socks5://alice@127.0.0.1:2\n  - [http://127.0.0.1:3, socks4://127.0.0.1:4]\n"
    )
    monkeypatch.setenv("BOT_FALLBACK__0__PASSWORD", "pw")
    config = load_config()
    assert [str(route) for route in config.fallback] == [
        "socks5://alice:***@127.0.0.1:2",
        "http://127.0.0.1:3 → socks4://127.0.0.1:4",
    ]
    assert config.fallback[0][0].secret() == "pw"
    monkeypatch.setenv("BOT_FALLBACK", '["socks5://127.0.0.1:9"]')
    monkeypatch.delenv("BOT_FALLBACK__0__PASSWORD")
    assert [str(route) for route in load_config().fallback] == ["socks5://127.0.0.1:9"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"fallback": ["socks5://127.0.0.1:1"]},
            "fallback: fallback routes need a primary route in proxy",
        ),
        (
            {"proxy": "socks5://127.0.0.1:1", "fallback_retry_primary_after": 5},
            "has no effect without fallback routes",
        ),
        (
            {"proxy": "socks5://127.0.0.1:1", "fallback": [[]]},
            "fallback[0]: a proxy chain needs at least one hop",
        ),
        (
            {
                "proxy": "socks5://127.0.0.1:1",
                "fallback": ["socks5://127.0.0.1:2"],
                "fallback_retry_primary_after": 0,
            },
            "expected greater than 0",
        ),
    ],
)
def test_fallback_settings_are_validated(settings: dict[str, object], message: str) -> None:
    """Fallback settings that cannot work are errors."""
    with pytest.raises(ConfigError) as caught:
        load_config(**settings)
    assert message in str(caught.value)


# --- the same behaviour through the real daemons ------------------------------------------
