"""Resources: sessions come and go a thousand times and leave nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import time
import warnings
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError

from botsession import build_session_from_config, load_config

from .conftest import ProxyFactory
from .servers import BackgroundLoop, BotApiStandIn, Listener, StreamServer
from .support import LOOPBACK, PATIENT, TOKEN, open_fds, reset, session_for, settle


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class LoopProblems:
    """Collects what the event loop reports (aiohttp's 'Unclosed client session' goes there)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.messages.append(str(context.get("message")))


async def test_a_thousand_sessions_leave_no_trace(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """1,000 create/use/close cycles through a proxy: fds back to baseline, no unclosed warnings, flat memory."""
    server = proxy("socks5", "u", "p")
    config = load_config(proxy=server.url(), api={"base": bot_api.base})
    problems = LoopProblems()
    asyncio.get_running_loop().set_exception_handler(problems)

    async def cycles(count: int) -> None:
        for _ in range(count):
            session = build_session_from_config(config)
            bot = Bot(TOKEN, session=session)
            assert (await bot.get_me()).id == 42
            await session.close()

    async def run(total: int, workers: int = 25) -> None:
        await asyncio.gather(*(cycles(total // workers) for _ in range(workers)))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await run(100)  # warm up: caches, pools, lazy imports
        fds_before = await settle(open_fds())
        gc.collect()
        rss_before = rss_bytes()
        await run(900)
        fds_after = await settle(fds_before)
        gc.collect()
        rss_after = rss_bytes()
    unclosed = [str(w.message) for w in caught if "nclosed" in str(w.message)]
    assert len(bot_api.calls) == 1000
    assert len(server.destinations) == 1000
    assert fds_after <= fds_before, (fds_before, fds_after)
    assert unclosed == []
    assert [m for m in problems.messages if "nclosed" in m] == []
    growth = rss_after - rss_before
    assert growth < 8 * 1024 * 1024, growth
    print(  # the figures for docs/reliability.md (run with -s)
        f"\n1000 cycles: fds {fds_before} -> {fds_after}, rss growth {growth / 1024:.0f} KiB, "
        f"unclosed warnings {len(unclosed)}"
    )


async def test_changing_the_proxy_closes_the_old_connector(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """Setting session.proxy closes the previous aiohttp session and its connector on next use."""
    first, second = proxy("socks5"), proxy("http")
    session = session_for(bot_api, first.url())
    bot = Bot(TOKEN, session=session)
    await bot.get_me()
    old_client = await session.create_session()
    old_connector = old_client.connector
    session.proxy = second.url()
    await bot.get_me()
    assert old_client.closed
    assert old_connector is not None
    assert old_connector.closed
    await session.close()


async def test_closing_with_requests_in_flight(bot_api: BotApiStandIn, proxy: ProxyFactory) -> None:
    """Closing a session while requests wait neither hangs nor leaks: they fail at once."""
    server = proxy("socks5")
    baseline = open_fds()
    bot_api.delay = 2 * PATIENT  # the server would answer only much later
    session = session_for(bot_api, server.url())
    bot = Bot(TOKEN, session=session)
    requests = [asyncio.ensure_future(bot.get_updates()) for _ in range(10)]
    deadline = time.monotonic() + PATIENT
    while bot_api.in_flight < 10 and time.monotonic() < deadline:  # noqa: ASYNC110 - another thread
        await asyncio.sleep(0.02)
    assert bot_api.in_flight == 10
    started = time.monotonic()
    await asyncio.wait_for(session.close(), PATIENT)
    results = await asyncio.wait_for(asyncio.gather(*requests, return_exceptions=True), PATIENT)
    assert time.monotonic() - started < PATIENT  # not when the server answers
    assert all(isinstance(result, TelegramNetworkError) for result in results), results
    assert await settle(baseline) <= baseline


def test_build_session_is_cheap_and_lazy() -> None:
    """Building a session opens nothing: connections are made on the first request."""
    before = open_fds()
    sessions = [build_session_from_config(proxy="socks5://127.0.0.1:1") for _ in range(50)]
    assert open_fds() == before
    assert all(session._session is None for session in sessions)


@dataclass
class Destination(StreamServer):
    """Counts the connections it has, each open until the other side closes it."""

    accepted: int = 0
    open: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        try:
            await reader.read()
        except ConnectionError:
            pass
        finally:
            self.open -= 1
            writer.close()


async def test_the_in_process_proxy_closes_onward_when_its_client_resets(
    background: BackgroundLoop, proxy: ProxyFactory
) -> None:
    """The suite's in-process http proxy closes its connection to the destination when its
    client resets right after the CONNECT request (as botsession does when it gives up); an
    orphan would be a ResourceWarning in whichever later test the garbage collector runs."""
    destination = Destination(background).start()
    server = proxy("http")
    try:
        for _ in range(50):
            _, writer = await asyncio.open_connection(LOOPBACK, server.port)
            writer.write(f"CONNECT {LOOPBACK}:{destination.port} HTTP/1.1\r\n\r\n".encode())
            await writer.drain()
            reset(writer.transport)
        deadline = time.monotonic() + 5
        while (server.serving or destination.open) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # (the servers run in another thread)
        assert server.serving == 0
        assert destination.accepted > 0  # the proxy did connect onward, for some of them at least
        assert destination.open == 0
    finally:
        destination.stop()


class HangingUp(asyncio.Protocol):
    """Closes each connection as soon as it has it."""

    made = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        HangingUp.made += 1
        transport.close()


def close_in_the_next_turn(listener: Listener) -> list[asyncio.Future[None]]:
    """Start ``listener.close()`` in a task made at the start of the next loop turn, the one
    that accepts the connection just made, as a stop() from another thread does."""
    closing: list[asyncio.Future[None]] = []
    asyncio.get_running_loop().call_soon(
        lambda: closing.append(asyncio.ensure_future(listener.close()))
    )
    return closing


async def test_a_server_closed_as_a_client_connects_leaves_nothing_behind() -> None:
    """The test servers' listener, closed in the very loop turn that accepts a connection (a
    stop() at the end of a test can be), still gives that connection its protocol, so nothing
    is left for the garbage collector (asyncio's Server leaks a transport every time)."""
    HangingUp.made = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(20):
            listener = await Listener.open(HangingUp)
            with socket.socket() as client:
                client.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    client.connect((LOOPBACK, listener.port))
                closing = close_in_the_next_turn(listener)
                await asyncio.sleep(0.02)
                await closing[0]
        gc.collect()
    assert HangingUp.made == 20
    assert [str(w.message) for w in caught if "unclosed" in str(w.message)] == []
