"""What the tests and the benchmark share: loopback constants, free ports, the stand-in's bot,
the sentinel password, proxy URLs, and small aiogram helpers."""

from __future__ import annotations

import socket
import warnings
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import BasicAuth

if TYPE_CHECKING:
    from aiogram.types import User

    from botsession import AiohttpSession

    from .servers import BotApiStandIn

LOOPBACK = "127.0.0.1"
"""The only address any test talks to (with ::1)."""
TOKEN = "42:STAND-IN-TOKEN"
"""A bot token the stand-in Bot API accepts."""

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

    async with Bot(TOKEN, session=session) as bot:
        return await bot.get_me()


def free_port() -> int:
    """A loopback TCP port that nothing listened on a moment ago (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])
