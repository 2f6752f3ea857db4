"""A client of each adapter (aiogram, python-telegram-bot, httpx, plain aiohttp) over one
configuration, reduced to what the tests that run the same steps through every client do."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from aiogram import Bot as AiogramBot
from telegram import Bot as PtbBot

from botsession import (
    build_client_session,
    build_httpx_transport,
    build_ptb_request,
    build_session_from_config,
)

from .servers import BotApiStandIn
from .support import TOKEN

Adapter = Literal["aiogram", "ptb", "httpx", "aiohttp"]


@dataclass
class Client:
    """A client of one adapter, reduced to what these tests do with it."""

    get_me: Callable[[], Awaitable[Any]]
    close: Callable[[], Awaitable[None]]
    route_status: Callable[[], Any]


@asynccontextmanager
async def client(adapter: Adapter, api: BotApiStandIn, **settings: Any) -> AsyncIterator[Client]:
    """A client of ``adapter`` over ``settings``, for the stand-in; closed at the end."""
    config: dict[str, Any] = {"api": {"base": api.base}, **settings}
    url = f"{api.base}/bot{TOKEN}/getMe"
    if adapter == "aiogram":
        session = build_session_from_config(**config)
        bot = AiogramBot(TOKEN, session=session)
        yield Client(bot.get_me, session.close, session.route_status)
        await session.close()
    elif adapter == "ptb":
        request = build_ptb_request(**config)
        await request.initialize()
        ptb = PtbBot(TOKEN, base_url=f"{api.base}/bot", request=request)
        yield Client(ptb.get_me, request.shutdown, request.route_status)
        await request.shutdown()
    elif adapter == "httpx":
        transport = build_httpx_transport(**config)
        http = httpx.AsyncClient(transport=transport)

        async def get_me_httpx() -> Any:
            return (await http.post(url)).json()

        yield Client(get_me_httpx, http.aclose, transport.route_status)  # type: ignore[attr-defined]
        await http.aclose()
    else:
        plain = build_client_session(**config)

        async def get_me_aiohttp() -> Any:
            async with plain.post(url) as response:
                return await response.json()

        connector: Any = plain.connector
        yield Client(get_me_aiohttp, plain.close, connector.route_status)
        await plain.close()
