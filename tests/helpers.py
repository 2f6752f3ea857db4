"""Small helpers shared by the tests."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import BasicAuth

if TYPE_CHECKING:
    from aiogram.types import User

    from botsession import AiohttpSession

    from .servers import BotApiStandIn

BOT_USER = {"id": 42, "is_bot": True, "first_name": "Stand-in", "username": "standin_bot"}
"""What the stand-in Bot API servers answer to getMe."""

SENTINEL = "S3NT1NEL-pa55"
"""A password that must never appear in any output."""


def basic_auth(login: str, password: str) -> BasicAuth:
    """aiohttp's BasicAuth, which aiogram's proxy form uses (aiohttp >= 3.14 deprecates it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "BasicAuth is deprecated", DeprecationWarning)
        return BasicAuth(login, password)


def proxy_url(
    scheme: str,
    host: str,
    port: int,
    username: str | None,
    password: str | None,
    *,
    credentials: bool,
) -> str:
    """``scheme://user:pass@host:port`` with percent-encoded credentials (or without them)."""
    userinfo = ""
    if credentials and username is not None:
        userinfo = quote(username, safe="")
        if password is not None:
            userinfo += ":" + quote(password, safe="")
        userinfo += "@"
    return f"{scheme}://{userinfo}{host}:{port}"


def session_for(
    api: BotApiStandIn, proxy: Any, *, host: str = "127.0.0.1", **overrides: Any
) -> AiohttpSession:
    """A botsession for the stand-in API (optionally addressed by another host name)."""
    from botsession import build_session_from_config

    base = api.base.replace("127.0.0.1", host)
    return build_session_from_config(proxy=proxy, api={"base": base}, **overrides)


async def get_me(session: AiohttpSession) -> User:
    """One real ``Bot.get_me()`` call with ``session``, closed afterwards."""
    from aiogram import Bot

    from .servers import TOKEN

    async with Bot(TOKEN, session=session) as bot:
        return await bot.get_me()
