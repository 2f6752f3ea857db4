"""The HTTP clients compared: each makes ``getMe`` round-trips to the stand-in Bot API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from tests.helpers import BOT_USER

TOKEN = "42:BENCHMARK-TOKEN"  # noqa: S105 - the stand-in accepts any token


@dataclass(frozen=True)
class Route:
    """How the clients reach the server: directly, through one proxy or through a chain."""

    name: str
    urls: tuple[str, ...]

    @property
    def proxy(self) -> Any:
        if not self.urls:
            return None
        return self.urls[0] if len(self.urls) == 1 else list(self.urls)


class Client:
    """One way of calling ``getMe``; ``start`` builds it, ``call`` is one round-trip."""

    name = "?"

    def __init__(self, route: Route, base: str) -> None:
        self.route = route
        self.base = base

    async def start(self) -> None:
        raise NotImplementedError

    async def call(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError


class _PlainAiohttp(Client):
    session: Any

    async def call(self) -> None:
        async with self.session.post(f"{self.base}/bot{TOKEN}/getMe") as response:
            body = await response.json()
        assert body["ok"], body

    async def stop(self) -> None:
        await self.session.close()


class RawConnector(_PlainAiohttp):
    """aiohttp with aiohttp-socks' own connector: the baseline every ratio refers to."""

    name = "raw aiohttp-socks connector"

    async def start(self) -> None:
        import aiohttp
        from aiohttp_socks import ChainProxyConnector, ProxyConnector

        if not self.route.urls:
            connector: aiohttp.TCPConnector = aiohttp.TCPConnector()
        elif len(self.route.urls) == 1:
            connector = ProxyConnector.from_url(self.route.urls[0])
        else:
            connector = ChainProxyConnector.from_urls(list(self.route.urls))
        self.session = aiohttp.ClientSession(connector=connector)


class BotsessionPlain(_PlainAiohttp):
    """botsession's route connector under a plain aiohttp session (build_client_session)."""

    name = "botsession (plain aiohttp)"

    async def start(self) -> None:
        from botsession import build_client_session

        self.session = build_client_session(proxy=self.route.proxy, api={"base": self.base})


class _Aiogram(Client):
    bot: Any

    async def call(self) -> None:
        me = await self.bot.get_me()
        assert me.id == BOT_USER["id"]

    async def stop(self) -> None:
        await self.bot.session.close()


class AiogramOwn(_Aiogram):
    """aiogram's own AiohttpSession(proxy=...)."""

    name = "aiogram AiohttpSession(proxy=)"

    async def start(self) -> None:
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        session = AiohttpSession(proxy=self.route.proxy, api=TelegramAPIServer.from_base(self.base))
        self.bot = Bot(TOKEN, session=session)


class BotsessionAiogram(_Aiogram):
    """botsession's aiogram session (build_session_from_config)."""

    name = "botsession (aiogram Bot)"

    async def start(self) -> None:
        from aiogram import Bot

        from botsession import build_session_from_config

        session = build_session_from_config(proxy=self.route.proxy, api={"base": self.base})
        self.bot = Bot(TOKEN, session=session)


class PythonTelegramBot(Client):
    """python-telegram-bot with HTTPXRequest(proxy=...) (no proxy chains)."""

    name = "python-telegram-bot HTTPXRequest(proxy=)"
    bot: Any

    @staticmethod
    def available() -> bool:
        try:
            import telegram  # noqa: F401
        except ImportError:
            return False
        return True

    async def start(self) -> None:
        from telegram import Bot
        from telegram.request import HTTPXRequest

        request = HTTPXRequest(proxy=self.route.urls[0] if self.route.urls else None)
        self.bot = Bot(TOKEN, base_url=f"{self.base}/bot", request=request)
        await self.bot.initialize()

    async def call(self) -> None:
        me = await self.bot.get_me()
        assert me.id == BOT_USER["id"]

    async def stop(self) -> None:
        await self.bot.shutdown()


ALL: tuple[type[Client], ...] = (
    RawConnector,
    BotsessionPlain,
    AiogramOwn,
    BotsessionAiogram,
    PythonTelegramBot,
)


def usable(kind: type[Client], route: Route) -> bool:
    """Whether ``kind`` can take ``route`` (PTB is optional and cannot chain proxies)."""
    if kind is PythonTelegramBot:
        return PythonTelegramBot.available() and len(route.urls) <= 1
    return True


def name_of(kind: type[Client], route: Route) -> str:
    return "raw aiohttp (direct)" if kind is RawConnector and not route.urls else kind.name


async def sequential(client: Client, count: int) -> None:
    for _ in range(count):
        await client.call()


async def concurrent(client: Client, count: int, width: int) -> None:
    for _ in range(max(1, count // width)):
        await asyncio.gather(*(client.call() for _ in range(width)))
