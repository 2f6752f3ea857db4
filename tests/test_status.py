"""``botsession.route_status(obj)``: one typed way to the routes' state of anything botsession
built, including the framework objects that hold it (typed as the frameworks' base classes)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import httpx
import pytest
from aiogram import Bot as AiogramBot
from telegram import Bot as PtbBot
from telegram.ext import ApplicationBuilder
from telegram.request import HTTPXRequest

import botsession
from botsession import (
    RouteStatus,
    build_client_session,
    build_httpx_client,
    build_httpx_transport,
    build_ptb_request,
    build_session_from_config,
    configure_application,
    route_status,
)

from .support import SENTINEL, TOKEN, free_port

NEVER_DIALLED = {
    "proxy": f"socks5://u:{SENTINEL}@127.0.0.1:{free_port()}",
    "fallback": [f"http://127.0.0.1:{free_port()}"],
}
"""Two routes that nothing connects through in these tests: each starts active / standby."""
STATES = ["active", "standby"]


@asynccontextmanager
async def holder(kind: str) -> AsyncIterator[object]:
    """The object a user holds, of each kind ``route_status`` takes, over NEVER_DIALLED."""
    if kind == "aiogram session":
        session = build_session_from_config(**NEVER_DIALLED)
        yield session
        await session.close()
    elif kind == "aiogram Bot":
        async with AiogramBot(TOKEN, session=build_session_from_config(**NEVER_DIALLED)) as bot:
            yield bot
    elif kind == "aiohttp ClientSession":
        async with build_client_session(**NEVER_DIALLED) as client:
            yield client
    elif kind == "BotSessionRequest":
        yield build_ptb_request(**NEVER_DIALLED)
    elif kind == "PTB Bot":
        yield PtbBot(TOKEN, request=build_ptb_request(**NEVER_DIALLED))
    elif kind == "PTB Application":
        yield configure_application(ApplicationBuilder().token(TOKEN), **NEVER_DIALLED).build()
    elif kind == "httpx client of build_httpx_client":
        async with build_httpx_client(**NEVER_DIALLED) as http:
            yield http
    elif kind == "httpx client given the transport":
        transport = build_httpx_transport(**NEVER_DIALLED)
        async with httpx.AsyncClient(transport=transport) as http:
            yield http
    else:
        yield build_httpx_transport(**NEVER_DIALLED)


KINDS = [
    "aiogram session",
    "aiogram Bot",
    "aiohttp ClientSession",
    "BotSessionRequest",
    "PTB Bot",
    "PTB Application",
    "httpx client of build_httpx_client",
    "httpx client given the transport",
    "httpx transport",
]


@pytest.mark.parametrize("kind", KINDS)
async def test_route_status_reads_every_object_botsession_built(kind: str) -> None:
    """route_status(obj) gives a list with each route's state, primary first, passwords masked."""
    async with holder(kind) as built:
        statuses = route_status(built)
    assert isinstance(statuses, list)
    assert all(isinstance(status, RouteStatus) for status in statuses)
    assert [status.state for status in statuses] == STATES
    assert [status.name for status in statuses] == ["proxy", "fallback[0]"]
    assert statuses[0].route.startswith("socks5://u:***@127.0.0.1:")
    assert SENTINEL not in repr(statuses)


@pytest.mark.parametrize(
    "make",
    [
        build_session_from_config,
        build_ptb_request,
        build_httpx_transport,
    ],
    ids=["aiogram", "ptb", "httpx"],
)
async def test_a_direct_connection_has_no_routes(make: Callable[[], object]) -> None:
    """For a configuration without a proxy, route_status is an empty list."""
    assert route_status(make()) == []


async def test_a_direct_plain_aiohttp_session_has_no_routes() -> None:
    """build_client_session without a proxy is still botsession's: an empty list, no error."""
    async with build_client_session() as client:
        assert route_status(client) == []


async def test_objects_botsession_did_not_build_are_refused_naming_them() -> None:
    """Anything else raises TypeError saying what it got, down to the part that is not
    botsession's, and what route_status takes."""
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(TypeError) as refused:
            route_status(plain)
    message = str(refused.value)
    assert message.startswith("route_status() takes what botsession built (")
    assert message.endswith(
        "; got aiohttp.client.ClientSession whose connector is aiohttp.connector.TCPConnector"
    )
    async with httpx.AsyncClient() as http:
        with pytest.raises(TypeError, match=r"got httpx\.AsyncClient whose transport is httpx\."):
            route_status(http)
    ptb = PtbBot(TOKEN, request=HTTPXRequest())
    with pytest.raises(
        TypeError,
        match=r"got telegram\._bot\.Bot whose request is telegram\.request\._httpxrequest\.",
    ):
        route_status(ptb)
    with pytest.raises(TypeError, match=r"; got str$"):
        route_status("bot.yaml")


async def test_a_closed_aiohttp_session_is_refused_saying_so() -> None:
    """A plain aiohttp session has given up its connector once closed: the error says so."""
    client = build_client_session(**NEVER_DIALLED)
    await client.close()
    with pytest.raises(TypeError, match=r"whose connector is None \(it is closed: ask before"):
        route_status(client)


def test_route_status_is_exported_without_importing_the_frameworks() -> None:
    """botsession.route_status needs no aiohttp, aiogram, PTB or httpx to be imported, and
    refuses an object without importing them."""
    code = (
        "import sys, botsession\n"
        "try:\n"
        "    botsession.route_status(object())\n"
        "except TypeError as error:\n"
        "    print(error)\n"
        "print(sorted(m for m in ('aiohttp', 'aiogram', 'telegram', 'httpx') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    refused, imported = result.stdout.splitlines()
    assert refused.endswith("; got object")
    assert imported == "[]"
    assert "route_status" in botsession.__all__
