"""python-telegram-bot through the real Debian daemons: danted, microsocks, tinyproxy and ssh -D.

Each daemon logs the connections it makes out; the tests read those logs to prove which hops
carried a request. Under CI a missing daemon fails these tests; elsewhere they are skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from telegram import Bot, Update
from telegram.error import NetworkError, TimedOut
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from botsession.ptb import build_ptb_request, configure_application

from ..servers import BotApiStandIn, SilentServer
from ..support import LATE, SENTINEL, TOKEN, free_port
from .daemons import RunningProxy

pytestmark = pytest.mark.daemons

START = {
    "update_id": 5,
    "message": {
        "message_id": 50,
        "date": 0,
        "chat": {"id": 7, "type": "private"},
        "from": {"id": 7, "is_bot": False, "first_name": "Ann"},
        "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    },
}


class Watch:
    """The destinations a daemon logs from now on (the daemons are shared by all tests)."""

    def __init__(self, daemon: RunningProxy) -> None:
        self.daemon = daemon
        self.before = len(daemon.destinations())

    def new(self, expect_port: int | None = None) -> list[tuple[str, int]]:
        if expect_port is not None:
            self.daemon.wait_for_destination(expect_port)
        return self.daemon.destinations()[self.before :]


@asynccontextmanager
async def ptb_bot(
    api: BotApiStandIn, *, host: str = "127.0.0.1", **settings: Any
) -> AsyncIterator[Bot]:
    """A PTB Bot over ``build_ptb_request(**settings)`` for the stand-in reached as ``host``."""
    base = api.base.replace("127.0.0.1", host)
    async with build_ptb_request(api={"base": base}, **settings) as request:
        yield Bot(
            TOKEN,
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            request=request,
            get_updates_request=request,
        )


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
    async with ptb_bot(bot_api, host="localhost", proxy=route) as bot:
        assert (await bot.get_me()).username == "standin_bot"
    assert watches[0].new(micro.port) == [("127.0.0.1", micro.port)]
    assert watches[1].new(tiny.port) == [("127.0.0.1", tiny.port)]
    assert watches[2].new(ssh_proxy.port) == [("127.0.0.1", ssh_proxy.port)]
    # socks4a: the last hop received the name and resolved it itself.
    assert watches[3].new(bot_api.port) == [("localhost", bot_api.port)]
    assert [call.method for call in bot_api.calls] == ["getMe"]


async def test_socks4a_via_ssh_dynamic_forward(
    bot_api: BotApiStandIn, ssh_proxy: RunningProxy
) -> None:
    """socks4a:// through ssh -D hands the API's name to ssh, which resolves it."""
    watch = Watch(ssh_proxy)
    async with ptb_bot(bot_api, host="localhost", proxy=ssh_proxy.url("socks4a")) as bot:
        assert (await bot.get_me()).id == 42
    assert watch.new(bot_api.port) == [("localhost", bot_api.port)]


async def test_upload_and_download_through_microsocks_with_a_password(
    bot_api: BotApiStandIn, micro: RunningProxy
) -> None:
    """A document goes up and comes back down through microsocks, which demands the password."""
    watch = Watch(micro)
    content = bytes(range(256)) * 4096  # 1 MiB
    async with ptb_bot(bot_api, proxy=micro.url("socks5")) as bot:
        message = await bot.send_document(7, content, filename="blob.bin")
        assert message.document is not None
        file = await bot.get_file(message.document.file_id)
        assert await file.download_as_bytearray() == content
    [upload] = bot_api.uploads
    assert (upload.filename, upload.content) == ("blob.bin", content)
    assert set(watch.new(bot_api.port)) == {("127.0.0.1", bot_api.port)}


async def test_wrong_password_on_microsocks_names_hop_2(
    bot_api: BotApiStandIn, dante: RunningProxy, micro: RunningProxy
) -> None:
    """A wrong password at hop 2 is NetworkError naming hop 2, with no password shown."""
    wrong = micro.url("socks5", credentials=False).replace(
        "socks5://", "socks5://mia:not-the-password@"
    )
    async with ptb_bot(bot_api, proxy=[dante.url("socks5"), wrong]) as bot:
        with pytest.raises(NetworkError) as caught:
            await bot.get_me()
    message = str(caught.value)
    assert message.startswith(
        f"proxy hop 2 of 2 (socks5://mia:***@127.0.0.1:{micro.port}): "
        "the proxy rejected the credentials"
    )
    assert "not-the-password" not in message
    assert SENTINEL not in message
    assert bot_api.calls == []


async def test_tinyproxy_with_basic_auth(bot_api: BotApiStandIn, tiny: RunningProxy) -> None:
    """tinyproxy lets the request through with the right password and not with a wrong one."""
    watch = Watch(tiny)
    async with ptb_bot(bot_api, proxy=tiny.url("http")) as bot:
        assert (await bot.get_me()).id == 42
    assert watch.new(bot_api.port) == [("127.0.0.1", bot_api.port)]
    wrong = tiny.url("http", credentials=False).replace("http://", "http://tom:wrong@")
    async with ptb_bot(bot_api, proxy=wrong) as bot:
        with pytest.raises(
            NetworkError,
            match=r"^proxy hop 1 of 1 \(http://tom:\*\*\*@127.0.0.1:\d+\): the proxy rejected",
        ):
            await bot.get_me()


async def test_application_polls_through_dante_and_tinyproxy(
    bot_api: BotApiStandIn, dante: RunningProxy, tiny: RunningProxy
) -> None:
    """An Application built with configure_application long-polls and handles /start via both."""
    first, second = Watch(dante), Watch(tiny)
    app = configure_application(
        ApplicationBuilder().token(TOKEN),
        proxy=[dante.url("socks5"), tiny.url("http")],
        api={"base": bot_api.base},
    ).build()
    handled: asyncio.Queue[int] = asyncio.Queue()

    async def start(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        await handled.put(update.update_id)

    app.add_handler(CommandHandler("start", start))
    bot_api.push_update(START)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=1, poll_interval=0)
        assert await asyncio.wait_for(handled.get(), 10) == 5
        await app.updater.stop()
        await app.stop()
    assert set(first.new(tiny.port)) == {("127.0.0.1", tiny.port)}
    assert set(second.new(bot_api.port)) == {("127.0.0.1", bot_api.port)}
    assert [call.method for call in bot_api.calls][:3] == ["getMe", "deleteWebhook", "getUpdates"]


async def test_silent_hop_behind_dante_times_out(
    bot_api: BotApiStandIn, dante: RunningProxy, silent_server: SilentServer
) -> None:
    """A hop behind Dante that never answers is TimedOut within connect_timeout, naming it."""
    route = [dante.url("socks5"), f"http://127.0.0.1:{silent_server.port}"]
    async with ptb_bot(bot_api, proxy=route, connect_timeout=1) as bot:
        started = time.monotonic()
        with pytest.raises(
            TimedOut, match=r"^proxy hop 2 of 2 .*no answer within the 1 s connect timeout"
        ):
            await bot.get_me()
        assert 0.9 < time.monotonic() - started < 1 + LATE


async def test_dead_hop_after_dante(bot_api: BotApiStandIn, dante: RunningProxy) -> None:
    """A dead second hop is reported by Dante at hop 1, naming the address of hop 2."""
    port = free_port()
    route = [dante.url("socks5"), f"socks5://127.0.0.1:{port}"]
    async with ptb_bot(bot_api, proxy=route) as bot:
        with pytest.raises(
            NetworkError,
            match=rf"^proxy hop 1 of 2 .* refused to connect to 127.0.0.1:{port} \(hop 2\)",
        ) as caught:
            await bot.get_me()
    assert not isinstance(caught.value, TimedOut)
