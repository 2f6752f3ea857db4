"""The HTTP clients compared: each makes ``getMe`` round-trips to the stand-in Bot API."""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
from dataclasses import dataclass
from typing import Any

from tests.support import BOT_USER

TOKEN = "42:BENCHMARK-TOKEN"  # noqa: S105 - the stand-in accepts any token


def pool_size() -> int:
    """The connections every client may open to one server and keep alive: botsession's
    default ``limit``. Each client is given the same number, so that no figure measures a
    smaller pool (python-telegram-bot's default pool is 1 connection, httpx keeps 20 alive)."""
    from botsession.config_schema import BotSessionConfig

    return int(BotSessionConfig.model_fields["limit"].default)


def httpx_limits() -> Any:
    """httpx's limits for ``pool_size()`` connections, every one of them kept alive (as
    aiohttp's connector keeps each connection it releases, up to its ``limit``)."""
    import httpx

    pool = pool_size()
    return httpx.Limits(max_connections=pool, max_keepalive_connections=pool)


@dataclass(frozen=True)
class Route:
    """How the clients reach the server: directly, through one proxy or through a chain."""

    name: str
    urls: tuple[str, ...]
    ca_file: str | None = None
    """The CA that signed the https proxy's and the https stand-in's certificates."""
    base: str | None = None
    """The stand-in this route goes to, if not the worker's (the https one)."""

    @property
    def https_proxy(self) -> bool:
        return any(url.startswith("https:") for url in self.urls)

    @property
    def proxy(self) -> Any:
        """The route as botsession's ``proxy`` setting (https hops trust ``ca_file``)."""
        hops: list[Any] = list(self.urls)
        if self.ca_file is not None:
            hops = [
                {"url": url, "ca_file": self.ca_file} if url.startswith("https:") else url
                for url in hops
            ]
        if not hops:
            return None
        return hops[0] if len(hops) == 1 else hops

    def botsession_options(self, base: str) -> dict[str, Any]:
        """botsession's settings for this route to ``base``."""
        options: dict[str, Any] = {"proxy": self.proxy, "api": {"base": base}}
        options["limit"] = pool_size()  # the default, said out loud
        if base.startswith("https:") and self.ca_file is not None:
            options["ssl"] = {"ca_file": self.ca_file}
        return options

    def tls_context(self) -> ssl.SSLContext | None:
        """A client context trusting ``ca_file`` (for the other libraries), or None."""
        if self.ca_file is None:
            return None
        return ssl.create_default_context(cafile=self.ca_file)


class Client:
    """One way of calling ``getMe``; ``start`` builds it, ``call`` is one round-trip."""

    name = "?"
    needs: tuple[str, ...] = ()
    """Modules it imports beyond botsession's own dependencies (optional in a test venv)."""
    needs_for_socks: tuple[str, ...] = ()
    """Modules it also needs to go through a SOCKS proxy (httpx: socksio, from httpx[socks])."""
    chains = True
    """Whether it can go through a chain of proxies (only botsession's clients and the raw
    aiohttp-socks connector can)."""
    https_proxies = True
    """Whether it can go through an HTTPS proxy (aiogram's session, on aiohttp-socks, cannot)."""

    @classmethod
    def usable(cls, route: Route) -> bool:
        """Whether this client is installed and can take ``route``."""
        if not cls.chains and len(route.urls) > 1:
            return False
        if not cls.https_proxies and route.https_proxy:
            return False
        needs = cls.needs
        if any(url.startswith("socks") for url in route.urls):
            needs += cls.needs_for_socks
        return all(importlib.util.find_spec(module) is not None for module in needs)

    def __init__(self, route: Route, base: str) -> None:
        self.route = route
        self.base = route.base or base

    async def start(self) -> None:
        raise NotImplementedError

    async def call(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError


class _PlainAiohttp(Client):
    session: Any
    proxy: str | None = None
    """aiohttp's own ``proxy=`` for each request (the raw client on an HTTPS proxy)."""

    async def call(self) -> None:
        url = f"{self.base}/bot{TOKEN}/getMe"
        async with self.session.post(url, proxy=self.proxy) as response:
            body = await response.json()
        assert body["ok"], body

    async def stop(self) -> None:
        await self.session.close()


class RawConnector(_PlainAiohttp):
    """aiohttp with aiohttp-socks' own connector: the baseline every ratio refers to. An HTTPS
    proxy, which aiohttp-socks cannot take, goes through aiohttp's own ``proxy=`` instead.
    Its connector's ``limit`` is ``pool_size()`` (aiohttp's default too)."""

    name = "raw aiohttp-socks connector"

    async def start(self) -> None:
        import aiohttp
        from aiohttp_socks import ChainProxyConnector, ProxyConnector

        if self.route.https_proxy:
            (self.proxy,) = self.route.urls
            tls = self.route.tls_context()  # for the proxy and the stand-in alike
            connector = aiohttp.TCPConnector(ssl=tls, limit=pool_size())
            self.session = aiohttp.ClientSession(connector=connector)
            return
        if not self.route.urls:
            connector = aiohttp.TCPConnector(limit=pool_size())
        elif len(self.route.urls) == 1:
            connector = ProxyConnector.from_url(self.route.urls[0], limit=pool_size())
        else:
            connector = ChainProxyConnector.from_urls(list(self.route.urls), limit=pool_size())
        self.session = aiohttp.ClientSession(connector=connector)


class BotsessionPlain(_PlainAiohttp):
    """botsession's route connector under a plain aiohttp session (build_client_session)."""

    name = "botsession (plain aiohttp)"

    async def start(self) -> None:
        from botsession import build_client_session

        self.session = build_client_session(**self.route.botsession_options(self.base))


class _Aiogram(Client):
    bot: Any
    needs = ("aiogram",)

    async def call(self) -> None:
        me = await self.bot.get_me()
        assert me.id == BOT_USER["id"]

    async def stop(self) -> None:
        await self.bot.session.close()


class AiogramOwn(_Aiogram):
    """aiogram's own AiohttpSession(proxy=..., limit=pool_size()). With a proxy, aiogram drops
    ``limit`` and its connector takes aiohttp's default, 100; ``start`` checks that this is
    ``pool_size()`` too."""

    name = "aiogram AiohttpSession(proxy=)"
    https_proxies = False
    needs = ("aiogram", "aiohttp_socks")  # aiogram's proxy support is aiohttp-socks

    async def start(self) -> None:
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        api = TelegramAPIServer.from_base(self.base)
        session = AiohttpSession(proxy=self.route.proxy, api=api, limit=pool_size())
        self.bot = Bot(TOKEN, session=session)
        limit = (await session.create_session()).connector.limit
        assert limit == pool_size(), f"aiogram's connector allows {limit} connections"


class BotsessionAiogram(_Aiogram):
    """botsession's aiogram session (build_session_from_config)."""

    name = "botsession (aiogram Bot)"

    async def start(self) -> None:
        from aiogram import Bot

        from botsession import build_session_from_config

        session = build_session_from_config(**self.route.botsession_options(self.base))
        self.bot = Bot(TOKEN, session=session)


class _PythonTelegramBot(Client):
    bot: Any
    needs = ("telegram",)

    async def call(self) -> None:
        me = await self.bot.get_me()
        assert me.id == BOT_USER["id"]

    async def stop(self) -> None:
        await self.bot.shutdown()


class PythonTelegramBot(_PythonTelegramBot):
    """python-telegram-bot with HTTPXRequest(proxy=..., connection_pool_size=pool_size()) (no
    proxy chains). Its default pool is one connection, which would make every concurrent
    request wait for the one before it."""

    name = "python-telegram-bot HTTPXRequest(proxy=)"
    chains = False
    needs_for_socks = ("socksio",)

    async def start(self) -> None:
        import httpx
        from telegram import Bot
        from telegram.request import HTTPXRequest

        tls = self.route.tls_context()
        pool = pool_size()
        if tls is None:
            proxy = self.route.urls[0] if self.route.urls else None
            request = HTTPXRequest(proxy=proxy, connection_pool_size=pool)
        else:  # trust the test CA for the https proxy and the https stand-in
            proxy = httpx.Proxy(self.route.urls[0], ssl_context=tls)
            request = HTTPXRequest(
                proxy=proxy, connection_pool_size=pool, httpx_kwargs={"verify": tls}
            )
        self.bot = Bot(TOKEN, base_url=f"{self.base}/bot", request=request)
        await self.bot.initialize()


class BotsessionPythonTelegramBot(_PythonTelegramBot):
    """python-telegram-bot's Bot with botsession's request (build_ptb_request), chains too."""

    name = "botsession (python-telegram-bot Bot)"

    async def start(self) -> None:
        from telegram import Bot

        from botsession.ptb import build_ptb_request

        request = build_ptb_request(**self.route.botsession_options(self.base))
        self.bot = Bot(TOKEN, base_url=f"{self.base}/bot", request=request)
        await self.bot.initialize()


class _Httpx(Client):
    client: Any
    needs = ("httpx",)

    async def call(self) -> None:
        response = await self.client.post(f"{self.base}/bot{TOKEN}/getMe")
        body = response.json()
        assert body["ok"], body

    async def stop(self) -> None:
        await self.client.aclose()


class HttpxOwn(_Httpx):
    """httpx's own proxy support: AsyncClient(proxy="socks5://...") with httpx[socks], with
    ``httpx_limits()`` (httpx's default keeps only 20 of its 100 connections alive)."""

    name = "httpx AsyncClient(proxy=)"
    chains = False
    needs_for_socks = ("socksio",)

    async def start(self) -> None:
        import httpx

        # trust_env=False, as botsession's client: no proxy or certificates from the environment.
        proxy: Any = self.route.urls[0] if self.route.urls else None
        tls = self.route.tls_context()
        options: dict[str, Any] = {"limits": httpx_limits(), "trust_env": False}
        if tls is None:
            self.client = httpx.AsyncClient(proxy=proxy, **options)
        else:  # trust the test CA for the https proxy and the https stand-in
            proxy = httpx.Proxy(proxy, ssl_context=tls)
            self.client = httpx.AsyncClient(proxy=proxy, verify=tls, **options)


class BotsessionHttpx(_Httpx):
    """botsession's httpx client (build_httpx_client): httpx over the route connector."""

    name = "botsession (httpx AsyncClient)"

    async def start(self) -> None:
        from botsession.httpx_transport import build_httpx_client

        self.client = build_httpx_client(**self.route.botsession_options(self.base))


ALL: tuple[type[Client], ...] = (
    RawConnector,
    BotsessionPlain,
    AiogramOwn,
    BotsessionAiogram,
    PythonTelegramBot,
    BotsessionPythonTelegramBot,
    HttpxOwn,
    BotsessionHttpx,
)
"""Every client, in the order of the report's rows on each route."""


def usable(kind: type[Client], route: Route) -> bool:
    """Whether ``kind`` can take ``route`` (PTB and httpx are optional; their own proxy
    support cannot chain proxies)."""
    return kind.usable(route)


def name_of(kind: type[Client], route: Route) -> str:
    if kind is RawConnector and not route.urls:
        return "raw aiohttp (direct)"
    if kind is RawConnector and route.https_proxy:
        return "raw aiohttp ClientSession(proxy=)"
    return kind.name


SILENT_PRIMARY: dict[str, str] = {
    "default": "botsession aiogram `Bot`, defaults (`fallback_hedge_after` {hedge:g} s)",
    "no-hedge": "botsession aiogram `Bot`, `fallback_hedge_after: null` "
    "(`connect_timeout` {connect:g} s)",
    "aiogram": "aiogram `AiohttpSession(proxy=<silent primary>)` (no fallback)",
}
"""The clients of the silent-primary table, by the kind the worker is given (row labels)."""


def silent_primary_bot(kind: str, base: str, silent: str, fallback: str) -> Any:
    """An aiogram ``Bot`` whose proxy is the ``silent`` primary (and ``fallback`` the only
    fallback, for botsession's sessions)."""
    from aiogram import Bot

    if kind == "aiogram":
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        session: Any = AiohttpSession(proxy=silent, api=TelegramAPIServer.from_base(base))
    else:
        from botsession import build_session_from_config

        options: dict[str, Any] = {"fallback_hedge_after": None} if kind == "no-hedge" else {}
        session = build_session_from_config(
            proxy=silent, fallback=[fallback], api={"base": base}, **options
        )
    return Bot(TOKEN, session=session)


SLICE = 10
"""Sequential calls timed together: a run's slices show how fast a client can be when the
machine leaves it alone (its best slice), whatever the rest of the run met."""


def slices(mode: str, count: int, width: int) -> list[int]:
    """The calls of each timed slice of a run: ``SLICE`` at a time sequentially, one batch of
    ``width`` at a time concurrently (``count // width`` batches, at least one)."""
    if mode == "sequential":
        return [min(SLICE, count - done) for done in range(0, count, SLICE)]
    return [width] * max(1, count // width)


async def sequential(client: Client, count: int) -> None:
    for _ in range(count):
        await client.call()


async def concurrent(client: Client, count: int, width: int) -> None:
    for _ in range(max(1, count // width)):
        await asyncio.gather(*(client.call() for _ in range(width)))
