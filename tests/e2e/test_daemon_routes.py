"""End to end through the real Debian daemons: danted, microsocks, tinyproxy and ssh -D.

Under CI (any non-empty CI but 0/false) a missing daemon fails these tests; elsewhere they are
skipped with the reason.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError

from botsession import build_session_from_config

from ..servers import BotApiStandIn, SilentServer
from ..support import LATE, SENTINEL, TOKEN, basic_auth, free_port, get_me, session_for
from .daemons import RunningProxy

pytestmark = pytest.mark.daemons


class Watch:
    """The destinations a daemon logs from now on (the daemons are shared by all tests)."""

    def __init__(self, daemon: RunningProxy) -> None:
        self.daemon = daemon
        self.before = len(daemon.destinations())

    def new(self, expect_port: int | None = None) -> list[tuple[str, int]]:
        if expect_port is not None:
            self.daemon.wait_for_destination(expect_port)
        return self.daemon.destinations()[self.before :]


async def test_get_me_through_all_four_daemons(
    bot_api: BotApiStandIn,
    dante: RunningProxy,
    micro: RunningProxy,
    tiny: RunningProxy,
    ssh_proxy: RunningProxy,
) -> None:
    """Bot.get_me() through danted → microsocks → tinyproxy → ssh -D uses each hop, in order."""
    watches = [Watch(d) for d in (dante, micro, tiny, ssh_proxy)]
    route = [dante.url("socks5"), micro.url("socks5"), tiny.url("http"), ssh_proxy.url("socks4a")]
    me = await get_me(session_for(bot_api, route, host="localhost"))
    assert me.username == "standin_bot"
    assert watches[0].new(micro.port) == [("127.0.0.1", micro.port)]
    assert watches[1].new(tiny.port) == [("127.0.0.1", tiny.port)]
    assert watches[2].new(ssh_proxy.port) == [("127.0.0.1", ssh_proxy.port)]
    # socks4a: the last hop received the name and resolved it itself.
    assert watches[3].new(bot_api.port) == [("localhost", bot_api.port)]
    assert [call.method for call in bot_api.calls] == ["getMe"]


async def test_plain_socks4_to_dante_with_a_hostname_target(
    bot_api: BotApiStandIn, dante: RunningProxy
) -> None:
    """socks4:// resolves the name on the client, so strict SOCKS4 Dante accepts it."""
    watch = Watch(dante)
    await get_me(session_for(bot_api, dante.url("socks4"), host="localhost"))
    assert watch.new(bot_api.port) == [("127.0.0.1", bot_api.port)]


async def test_socks4a_to_dante_is_rejected_by_dante(
    bot_api: BotApiStandIn, dante: RunningProxy
) -> None:
    """Dante refuses SOCKS4a, which is why socks4:// must not force remote DNS (as aiogram does)."""
    with pytest.raises(
        TelegramNetworkError,
        match=rf"proxy hop 1 of 1 \(socks4a://127.0.0.1:{dante.port}\): the proxy refused to connect to localhost:{bot_api.port}",
    ):
        await get_me(session_for(bot_api, dante.url("socks4a"), host="localhost"))
    assert bot_api.calls == []


async def test_socks4a_via_ssh_dynamic_forward(
    bot_api: BotApiStandIn, ssh_proxy: RunningProxy
) -> None:
    """socks4a:// works with ssh -D, which resolves the name itself."""
    watch = Watch(ssh_proxy)
    await get_me(session_for(bot_api, ssh_proxy.url("socks4a"), host="localhost"))
    assert watch.new(bot_api.port) == [("localhost", bot_api.port)]


async def test_basic_auth_precedence_with_tinyproxy(
    bot_api: BotApiStandIn, tiny: RunningProxy
) -> None:
    """BasicAuth wins over URL credentials: right BasicAuth works, wrong BasicAuth fails."""
    wrong_in_url = tiny.url("http", credentials=False).replace("http://", "http://tom:wrong@")
    watch = Watch(tiny)
    await get_me(session_for(bot_api, (wrong_in_url, basic_auth("tom", SENTINEL))))
    assert watch.new(bot_api.port) == [("127.0.0.1", bot_api.port)]
    with pytest.raises(
        TelegramNetworkError,
        match=r"proxy hop 1 of 1 \(http://tom:\*\*\*@127.0.0.1:\d+\): the proxy rejected the credentials",
    ):
        await get_me(session_for(bot_api, (tiny.url("http"), basic_auth("tom", "wrong"))))


async def test_two_tuple_chain_through_dante_and_microsocks(
    bot_api: BotApiStandIn, dante: RunningProxy, micro: RunningProxy
) -> None:
    """(url1, url2) is a two-hop chain: both daemons carry the request."""
    first, second = Watch(dante), Watch(micro)
    await get_me(session_for(bot_api, (dante.url("socks5"), micro.url("socks5"))))
    assert first.new(micro.port) == [("127.0.0.1", micro.port)]
    assert second.new(bot_api.port) == [("127.0.0.1", bot_api.port)]


async def test_wrong_password_on_microsocks_is_a_network_error(
    bot_api: BotApiStandIn, dante: RunningProxy, micro: RunningProxy
) -> None:
    """A wrong password at hop 2 is TelegramNetworkError naming hop 2, with no password shown."""
    wrong = micro.url("socks5", credentials=False).replace(
        "socks5://", "socks5://mia:not-the-password@"
    )
    with pytest.raises(TelegramNetworkError) as caught:
        await get_me(session_for(bot_api, [dante.url("socks5"), wrong]))
    message = str(caught.value)
    assert (
        f"proxy hop 2 of 2 (socks5://mia:***@127.0.0.1:{micro.port}): the proxy rejected the credentials"
        in message
    )
    assert "not-the-password" not in message
    assert SENTINEL not in message


async def test_dead_hop_after_dante(bot_api: BotApiStandIn, dante: RunningProxy) -> None:
    """A dead second hop is reported by Dante at hop 1, naming the address of hop 2."""
    port = free_port()
    with pytest.raises(
        TelegramNetworkError,
        match=rf"proxy hop 1 of 2 .* refused to connect to 127.0.0.1:{port} \(hop 2\)",
    ):
        await get_me(session_for(bot_api, [dante.url("socks5"), f"socks5://127.0.0.1:{port}"]))


async def test_hanging_hop_fails_within_connect_timeout(
    bot_api: BotApiStandIn, dante: RunningProxy, silent_server: SilentServer
) -> None:
    """A hop that never answers fails within connect_timeout, even behind a real proxy."""
    session = session_for(
        bot_api, [dante.url("socks5"), f"http://127.0.0.1:{silent_server.port}"], connect_timeout=1
    )
    started = time.monotonic()
    with pytest.raises(
        TelegramNetworkError, match=r"proxy hop 2 of 2 .*no answer within the 1 s connect timeout"
    ):
        await get_me(session)
    assert 0.9 < time.monotonic() - started < 1 + LATE


async def test_limit_kept_through_dante(bot_api: BotApiStandIn, dante: RunningProxy) -> None:
    """limit=2 allows exactly two simultaneous requests through Dante."""
    bot_api.delay = 0.3
    async with Bot(TOKEN, session=session_for(bot_api, dante.url("socks5"), limit=2)) as bot:
        await asyncio.gather(*(bot.get_updates() for _ in range(6)))
    assert (bot_api.max_in_flight, len(bot_api.calls)) == (2, 6)


async def test_tls_through_microsocks(
    tls_bot_api: BotApiStandIn, micro: RunningProxy, ca_file: Path
) -> None:
    """HTTPS end to end through a real proxy is verified with ssl.ca_file."""
    assert (
        await get_me(session_for(tls_bot_api, micro.url("socks5"), ssl={"ca_file": ca_file}))
    ).id == 42


async def test_yaml_url_with_password_from_env(
    bot_api: BotApiStandIn, micro: RunningProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bot.yaml holds the URL, BOT_PROXY__PASSWORD the secret; together they reach microsocks."""
    (tmp_path / "bot.yaml").write_text(
        f"proxy: socks5://mia@127.0.0.1:{micro.port}\napi:\n  base: ${{API_BASE}}\nconnect_timeout: 5\n"
    )
    monkeypatch.setenv("API_BASE", bot_api.base)
    monkeypatch.setenv("BOT_PROXY__PASSWORD", SENTINEL)
    monkeypatch.setenv("BOT_CONNECT_TIMEOUT", "3")
    session = build_session_from_config("bot.yaml")
    assert session.config.connect_timeout == 3
    watch = Watch(micro)
    await get_me(session)
    assert watch.new(bot_api.port) == [("127.0.0.1", bot_api.port)]
