"""python-telegram-bot over botsession routes: real ``telegram.Bot`` and ``Application`` calls.

Every request goes from PTB through ``BotSessionRequest`` and in-process proxies to the stand-in
Bot API; what the proxies and the stand-in received is what the tests check.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot, InputFile, InputMediaDocument, Update
from telegram.error import InvalidToken, NetworkError, TimedOut
from telegram.ext import Application, ApplicationBuilder, CommandHandler, ContextTypes
from telegram.request import BaseRequest, HTTPXRequest

from botsession import AllRoutesFailedError, ConfigError, ProxyHopError, load_config, route_status
from botsession.ptb import BotSessionRequest, build_ptb_request, configure_application

from .conftest import ProxyFactory
from .failover_support import until
from .faultproxy import Fault, FaultProxyFactory, Protocol, Step
from .servers import BotApiStandIn, SilentServer
from .support import BOT_USER, LATE, PATIENT, SENTINEL, TOKEN, free_port, open_fds, settle

CONNECT_TIMEOUT = 0.5
"""connect_timeout of the clients that meet a silent hop (seconds)."""
STALLING_UPLOAD = 48 * 1024 * 1024
"""Bytes of an upload that cannot fit in the socket buffers on the way: it stalls unread."""
PTB_AGENT = BaseRequest.USER_AGENT
START = {
    "update_id": 1,
    "message": {
        "message_id": 10,
        "date": 0,
        "chat": {"id": 7, "type": "private"},
        "from": {"id": 7, "is_bot": False, "first_name": "Ann"},
        "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    },
}
"""The update a user's /start sends."""


# --- helpers ---------------------------------------------------------------------------------


def bot_with(request: BaseRequest, api: BotApiStandIn) -> Bot:
    """A PTB Bot for the stand-in that sends everything (getUpdates too) with ``request``."""
    return Bot(
        TOKEN,
        base_url=f"{api.base}/bot",
        base_file_url=f"{api.base}/file/bot",
        request=request,
        get_updates_request=request,
    )


@asynccontextmanager
async def ptb_bot(api: BotApiStandIn, **settings: Any) -> AsyncIterator[Bot]:
    """A Bot over ``build_ptb_request(**settings)``, its request initialised and shut down.

    The Bot itself is not initialised, so that no getMe goes first.
    """
    async with build_ptb_request(api={"base": api.base}, **settings) as request:
        yield bot_with(request, api)


@asynccontextmanager
async def bot_over(api: BotApiStandIn, request: BotSessionRequest) -> AsyncIterator[Bot]:
    """A Bot over ``request`` (made with explicit timeouts), initialised and shut down."""
    async with request:
        yield bot_with(request, api)


def timeouts_request(api: BotApiStandIn, proxy: str, **timeouts: Any) -> BotSessionRequest:
    return BotSessionRequest(load_config(proxy=proxy, api={"base": api.base}), **timeouts)


def chain_texts(error: BaseException) -> list[str]:
    """str and repr of an exception and of everything in its __cause__/__context__ chain."""
    texts: list[str] = []
    current: BaseException | None = error
    while current is not None and len(texts) < 60:
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return texts


def elapsed_since(started: float) -> float:
    return time.monotonic() - started


# --- routes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["socks4", "socks4a", "socks5", "http"])
async def test_get_me_through_each_protocol(
    kind: str, bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """Bot.get_me() goes through a socks4, socks4a, socks5 or http proxy to the Bot API."""
    hop = proxy(kind)
    async with ptb_bot(bot_api, proxy=hop.url()) as bot:
        me = await bot.get_me()
    assert me.to_dict() == BOT_USER
    assert hop.destinations == [("127.0.0.1", bot_api.port)]
    assert [call.method for call in bot_api.calls] == ["getMe"]
    assert bot_api.user_agents == [PTB_AGENT]


async def test_get_me_through_a_mixed_chain(bot_api: BotApiStandIn, proxy: ProxyFactory) -> None:
    """Through socks5 → http → socks4a each hop connects to the next and the last to the API."""
    hops = [proxy("socks5"), proxy("http"), proxy("socks4a")]
    async with ptb_bot(bot_api, proxy=[hop.url() for hop in hops]) as bot:
        assert (await bot.get_me()).username == "standin_bot"
    assert hops[0].destinations == [("127.0.0.1", hops[1].port)]
    assert hops[1].destinations == [("127.0.0.1", hops[2].port)]
    assert hops[2].destinations == [("127.0.0.1", bot_api.port)]


async def test_credentials_reach_every_hop(bot_api: BotApiStandIn, proxy: ProxyFactory) -> None:
    """A socks5 and an http hop that demand a password both let the request through."""
    hops = [proxy("socks5", "mia", SENTINEL), proxy("http", "tom", SENTINEL)]
    async with ptb_bot(bot_api, proxy=[hop.url() for hop in hops]) as bot:
        assert (await bot.get_me()).id == 42
    assert hops[1].destinations == [("127.0.0.1", bot_api.port)]


async def test_direct_connection_without_a_proxy(bot_api: BotApiStandIn) -> None:
    """Without a proxy the request goes straight to the Bot API."""
    async with ptb_bot(bot_api) as bot:
        assert (await bot.get_me()).username == "standin_bot"
    assert [call.method for call in bot_api.calls] == ["getMe"]


async def test_https_through_a_proxy_with_ca_file(
    tls_bot_api: BotApiStandIn, proxy: ProxyFactory, ca_file: Path
) -> None:
    """HTTPS through a proxy is verified end to end with ssl.ca_file."""
    hop = proxy("socks5")
    async with ptb_bot(tls_bot_api, proxy=hop.url(), ssl={"ca_file": ca_file}) as bot:
        assert (await bot.get_me()).id == 42


async def test_untrusted_certificate_is_a_network_error(
    tls_bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """Without the test CA the TLS handshake through the proxy fails, and the error says so."""
    hop = proxy("socks5")
    async with ptb_bot(tls_bot_api, proxy=hop.url()) as bot:
        with pytest.raises(NetworkError, match="certificate verify failed") as caught:
            await bot.get_me()
    assert not isinstance(caught.value, TimedOut)
    assert tls_bot_api.calls == []


# --- failures --------------------------------------------------------------------------------


async def test_dead_first_hop_is_a_network_error_naming_it(bot_api: BotApiStandIn) -> None:
    """A hop nothing listens on is NetworkError naming hop 1, with the ProxyHopError as cause."""
    port = free_port()
    async with ptb_bot(bot_api, proxy=f"socks5://127.0.0.1:{port}") as bot:
        with pytest.raises(NetworkError) as caught:
            await bot.get_me()
    assert str(caught.value) == (
        f"proxy hop 1 of 1 (socks5://127.0.0.1:{port}): connection refused; "
        "is the proxy running and listening there?"
    )
    assert not isinstance(caught.value, TimedOut)
    cause = caught.value.__cause__
    assert isinstance(cause, ProxyHopError)
    assert (cause.hop_number, cause.reason) == (1, "refused")


async def test_dead_second_hop_is_named_by_the_first(
    bot_api: BotApiStandIn, fault_proxy: FaultProxyFactory
) -> None:
    """A dead hop 2 is reported by hop 1 refusing to connect to it."""
    first = fault_proxy("socks5")
    port = free_port()
    route = [first.url(), f"http://127.0.0.1:{port}"]
    async with ptb_bot(bot_api, proxy=route) as bot:
        with pytest.raises(
            NetworkError,
            match=rf"^proxy hop 1 of 2 .* refused to connect to 127\.0\.0\.1:{port} \(hop 2\)",
        ):
            await bot.get_me()
    assert bot_api.calls == []


async def test_silent_hop_times_out_within_connect_timeout(
    bot_api: BotApiStandIn, proxy: ProxyFactory, silent_server: SilentServer
) -> None:
    """A hop that never answers is TimedOut after connect_timeout, naming the hop."""
    route = [proxy("socks5").url(), f"http://127.0.0.1:{silent_server.port}"]
    async with ptb_bot(bot_api, proxy=route, connect_timeout=CONNECT_TIMEOUT) as bot:
        started = time.monotonic()
        with pytest.raises(TimedOut) as caught:
            await bot.get_me()
        elapsed = elapsed_since(started)
    assert str(caught.value).startswith(
        f"proxy hop 2 of 2 (http://127.0.0.1:{silent_server.port}): "
        "no answer within the 0.5 s connect timeout"
    )
    assert CONNECT_TIMEOUT - 0.05 < elapsed < CONNECT_TIMEOUT + LATE
    assert bot_api.calls == []


FAULT_CELLS: list[tuple[Protocol, Step, Fault]] = [
    ("socks5", "greeting", "close"),
    ("socks5", "reply", "reset"),
    ("http", "reply", "garbage"),
    ("socks4", "reply", "truncated"),
]


@pytest.mark.parametrize(("protocol", "step", "fault"), FAULT_CELLS, ids="-".join)
async def test_broken_second_hop_is_named(
    protocol: Protocol,
    step: Step,
    fault: Fault,
    bot_api: BotApiStandIn,
    fault_proxy: FaultProxyFactory,
) -> None:
    """A hop 2 that closes, resets, answers garbage or half is NetworkError naming hop 2, at once."""
    faulty = fault_proxy(protocol, step, fault)
    route = [fault_proxy("socks5").url(), faulty.url()]
    async with ptb_bot(bot_api, proxy=route, connect_timeout=PATIENT) as bot:
        started = time.monotonic()
        with pytest.raises(NetworkError) as caught:
            await bot.get_me()
        elapsed = elapsed_since(started)
    assert str(caught.value).startswith(f"proxy hop 2 of 2 ({protocol}://127.0.0.1:{faulty.port})")
    assert not isinstance(caught.value, TimedOut)
    assert elapsed < PATIENT / 2
    assert bot_api.calls == []


@pytest.mark.parametrize(("protocol", "step", "fault"), FAULT_CELLS[:2], ids="-".join)
async def test_broken_second_hop_is_replaced_by_the_fallback(  # noqa: PLR0917 - fixtures
    protocol: Protocol,
    step: Step,
    fault: Fault,
    bot_api: BotApiStandIn,
    fault_proxy: FaultProxyFactory,
    proxy: ProxyFactory,
) -> None:
    """With a fallback route the request goes through it instead, once."""
    route = [fault_proxy("socks5").url(), fault_proxy(protocol, step, fault).url()]
    backup = proxy("http")
    async with ptb_bot(bot_api, proxy=route, fallback=[backup.url()]) as bot:
        assert (await bot.get_me()).username == "standin_bot"
    assert backup.destinations == [("127.0.0.1", bot_api.port)]
    assert [call.method for call in bot_api.calls] == ["getMe"]


async def test_dead_primary_falls_back_and_sends_once(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A refused primary route hands the request to the fallback, which carries it exactly once."""
    backup = proxy("socks5", "u", SENTINEL)
    dead = f"socks5://127.0.0.1:{free_port()}"
    async with ptb_bot(bot_api, proxy=dead, fallback=[backup.url()]) as bot:
        await bot.get_me()
        with pytest.raises(NetworkError, match="Server disconnected"):
            await bot.send_message(chat_id=7, text="only once")  # its answer is lost
    assert [call.method for call in bot_api.calls] == ["getMe", "sendMessage"]
    # One connection carried both: the lost answer was not followed by a second attempt.
    assert backup.destinations == [("127.0.0.1", bot_api.port)]


async def test_all_routes_dead_is_one_network_error(bot_api: BotApiStandIn) -> None:
    """When the primary and the fallback fail, the error names both routes and their hops."""
    first, second = free_port(), free_port()
    settings = {
        "proxy": f"socks5://127.0.0.1:{first}",
        "fallback": [f"http://127.0.0.1:{second}"],
    }
    async with ptb_bot(bot_api, **settings) as bot:
        with pytest.raises(NetworkError) as caught:
            await bot.get_me()
    message = str(caught.value)
    assert message.startswith("all 2 proxy routes failed: route proxy (socks5://127.0.0.1:")
    assert f"route fallback[0] (http://127.0.0.1:{second}): proxy hop 1 of 1" in message
    assert not isinstance(caught.value, TimedOut)


async def test_passwords_never_reach_errors_or_reprs(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A rejected password shows as *** in the error and its chain, and in the request's repr."""
    hop = proxy("socks5", "mia", "the-right-one")
    wrong = f"socks5://mia:{SENTINEL}@127.0.0.1:{hop.port}"
    async with ptb_bot(bot_api, proxy=wrong) as bot:
        with pytest.raises(NetworkError) as caught:
            await bot.get_me()
        request = bot.request
    assert str(caught.value).startswith(
        f"proxy hop 1 of 1 (socks5://mia:***@127.0.0.1:{hop.port}): "
        "the proxy rejected the credentials"
    )
    assert all(SENTINEL not in text for text in chain_texts(caught.value))
    assert "mia:***@" in repr(request)
    assert SENTINEL not in repr(request)


async def test_direct_connection_failures_are_network_errors(bot_api: BotApiStandIn) -> None:
    """Without a proxy a refused connection is NetworkError naming aiohttp's error and address."""
    port = free_port()
    async with build_ptb_request() as request:
        bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{port}/bot", request=request)
        with pytest.raises(NetworkError) as caught:
            await bot.get_me()
    assert str(caught.value).startswith(
        f"aiohttp.ClientConnectorError: Cannot connect to host 127.0.0.1:{port}"
    )
    assert not isinstance(caught.value, TimedOut)


async def test_direct_silent_server_times_out_without_showing_the_token(
    silent_server: SilentServer,
) -> None:
    """A server that never completes TLS is TimedOut after connect_timeout, naming only host:port."""
    base = f"https://127.0.0.1:{silent_server.port}"
    async with build_ptb_request(connect_timeout=CONNECT_TIMEOUT) as request:
        bot = Bot(TOKEN, base_url=f"{base}/bot", request=request)
        started = time.monotonic()
        with pytest.raises(TimedOut) as caught:
            await bot.get_me()
        assert CONNECT_TIMEOUT - 0.05 < elapsed_since(started) < CONNECT_TIMEOUT + LATE
    assert str(caught.value) == (
        f"Timed out: no connection to 127.0.0.1:{silent_server.port} "
        "within the 0.5 s connect timeout"
    )


async def test_token_is_masked_in_aiohttp_messages() -> None:
    """aiohttp quotes a bad URL in its message; the NetworkError shows the token as
    ``bot<id>:***``."""
    async with build_ptb_request() as request:
        bot = Bot(TOKEN, base_url="http://[::1/bot", request=request)
        with pytest.raises(NetworkError) as caught:
            await bot.get_me()
    assert str(caught.value) == "aiohttp.InvalidUrlClientError: http://[::1/bot42:***/getMe"


async def test_bad_configuration_is_a_config_error_without_the_password() -> None:
    """An invalid route is ConfigError naming the problem, with the password masked."""
    with pytest.raises(ConfigError, match="port") as caught:
        build_ptb_request(proxy=f"socks5://u:{SENTINEL}@127.0.0.1")
    with pytest.raises(ConfigError, match="port"):
        configure_application(ApplicationBuilder(), proxy=f"socks5://u:{SENTINEL}@127.0.0.1")
    assert all(SENTINEL not in text for text in chain_texts(caught.value))


def locals_in_traceback(error: BaseException) -> list[str]:
    """repr of every local variable of every frame in the tracebacks of ``error``'s chain, as
    error reporters that record locals (Sentry, rich) show them."""
    texts: list[str] = []
    current: BaseException | None = error
    while current is not None:
        tb = current.__traceback__
        while tb is not None:
            texts += [repr(value) for value in tb.tb_frame.f_locals.values()]
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    return texts


async def test_tracebacks_hold_no_password(bot_api: BotApiStandIn, proxy: ProxyFactory) -> None:
    """No frame of a ConfigError or of a route failure keeps the password in a local variable."""
    bad = {"proxy": {"url": "socks5://u@127.0.0.1", "password": SENTINEL}}  # no port
    with pytest.raises(ConfigError) as from_request:
        build_ptb_request(**bad)
    with pytest.raises(ConfigError) as from_builder:
        configure_application(ApplicationBuilder(), **bad)
    del bad
    hop = proxy("socks5", "mia", "the-right-one")
    wrong = {"url": f"socks5://mia@127.0.0.1:{hop.port}", "password": SENTINEL}
    async with ptb_bot(bot_api, proxy=wrong) as bot:
        del wrong
        with pytest.raises(NetworkError) as from_route:
            await bot.get_me()
    for caught in (from_request, from_builder, from_route):
        texts = locals_in_traceback(caught.value)
        assert texts  # the frames were looked at
        assert all(SENTINEL not in text for text in texts)


def test_request_takes_a_validated_config_and_sane_timeouts() -> None:
    """The class refuses raw settings and non-positive timeouts, saying what it wants."""
    with pytest.raises(TypeError, match="takes a BotSessionConfig"):
        BotSessionRequest("bot.yaml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="read_timeout must be a positive number"):
        BotSessionRequest(load_config(), read_timeout=0)


# --- timeouts --------------------------------------------------------------------------------


def test_default_timeouts_come_from_the_configuration() -> None:
    """connect from connect_timeout, read and write from timeout, pool is PTB's 1 s."""
    request = build_ptb_request(timeout=30, connect_timeout=4)
    assert (request.connect_timeout, request.read_timeout, request.write_timeout) == (4, 30, 30)
    assert (request.media_write_timeout, request.pool_timeout) == (30, 1.0)
    explicit = BotSessionRequest(load_config(), read_timeout=None, write_timeout=2)
    assert (explicit.read_timeout, explicit.write_timeout, explicit.media_write_timeout) == (
        None,
        2,
        2,
    )


async def test_read_timeout_from_the_configuration(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A server slower than the configured timeout is TimedOut after that long."""
    bot_api.delay = PATIENT  # not answered in the test's time
    async with ptb_bot(
        bot_api, proxy=proxy("socks5").url(), timeout=0.5, connect_timeout=0.5
    ) as bot:
        started = time.monotonic()
        with pytest.raises(TimedOut, match=r"no answer within the 0\.5 s read timeout"):
            await bot.get_me()
        assert 0.45 < elapsed_since(started) < 0.5 + LATE


@pytest.mark.parametrize(
    ("default", "per_call", "answered"),
    [
        (0.3, BaseRequest.DEFAULT_NONE, False),  # DEFAULT_NONE: the request's default
        (0.3, None, True),  # None: no limit
        (0.3, 2.0, True),
        (None, 0.3, False),
    ],
    ids=["default", "none", "longer", "shorter"],
)
async def test_per_call_read_timeout(
    default: float | None,
    per_call: Any,
    answered: bool,
    bot_api: BotApiStandIn,
    proxy: ProxyFactory,
) -> None:
    """A read_timeout given to the call wins over the request's; DEFAULT_NONE keeps it."""
    bot_api.delay = 0.8
    request = timeouts_request(bot_api, proxy("socks5").url(), read_timeout=default)
    async with bot_over(bot_api, request) as bot:
        if answered:
            assert (await bot.get_me(read_timeout=per_call)).id == 42
        else:
            with pytest.raises(TimedOut, match=r"within the 0\.3 s read timeout"):
                await bot.get_me(read_timeout=per_call)


@pytest.mark.parametrize(
    ("default", "per_call", "limit"),
    [(PATIENT, 0.3, 0.3), (0.3, BaseRequest.DEFAULT_NONE, 0.3), (0.3, 0.6, 0.6)],
    ids=["shorter", "default", "longer"],
)
async def test_per_call_connect_timeout(
    default: float,
    per_call: Any,
    limit: float,
    bot_api: BotApiStandIn,
    silent_server: SilentServer,
) -> None:
    """A connect_timeout given to the call is the route's connect timeout for that request."""
    request = timeouts_request(
        bot_api, f"socks5://127.0.0.1:{silent_server.port}", connect_timeout=default
    )
    async with bot_over(bot_api, request) as bot:
        started = time.monotonic()
        with pytest.raises(TimedOut, match=rf"no answer within the {limit:g} s connect timeout"):
            await bot.get_me(connect_timeout=per_call)
        assert limit - 0.05 < elapsed_since(started) < limit + LATE


async def test_connect_timeout_none_waits_for_the_hop(
    bot_api: BotApiStandIn, silent_server: SilentServer
) -> None:
    """connect_timeout=None lifts the limit: a silent hop is still awaited after the default."""
    request = timeouts_request(
        bot_api, f"socks5://127.0.0.1:{silent_server.port}", connect_timeout=0.2
    )
    async with bot_over(bot_api, request) as bot:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(bot.get_me(connect_timeout=None), 1.0)


async def test_connect_timeout_none_through_tls(
    tls_bot_api: BotApiStandIn, proxy: ProxyFactory, ca_file: Path
) -> None:
    """Without a connect limit the route and the TLS handshake complete as usual."""
    settings = {"proxy": proxy("socks5").url(), "ssl": {"ca_file": ca_file}}
    async with ptb_bot(tls_bot_api, **settings) as bot:
        assert (await bot.get_me(connect_timeout=None)).id == 42


async def test_pool_timeout_when_every_connection_is_busy(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """With limit=1 taken, a second request waits pool_timeout, then TimedOut unsent."""
    bot_api.delay = PATIENT  # until release()
    async with ptb_bot(bot_api, proxy=proxy("socks5").url(), limit=1) as bot:
        busy = asyncio.ensure_future(bot.get_me())
        await until(lambda: bot_api.in_flight == 1, PATIENT)  # it waits at the server
        assert len(bot_api.calls) == 1
        started = time.monotonic()
        with pytest.raises(TimedOut, match="Pool timeout: All connections"):
            await bot.get_me(pool_timeout=0.2)
        assert 0.15 < elapsed_since(started) < 0.2 + LATE
        assert len(bot_api.calls) == 1
        waiting = asyncio.ensure_future(bot.get_me(pool_timeout=None))
        bot_api.delay = 0
        bot_api.release()
        await asyncio.gather(busy, waiting)
    assert len(bot_api.calls) == 2
    assert bot_api.max_in_flight == 1


async def test_limit_caps_simultaneous_requests(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """limit=2 lets two of six simultaneous requests be in flight at a time."""
    bot_api.delay = 0.2
    async with ptb_bot(bot_api, proxy=proxy("socks5").url(), limit=2) as bot:
        await asyncio.gather(*(bot.get_me(pool_timeout=None) for _ in range(6)))
    assert (bot_api.max_in_flight, len(bot_api.calls)) == (2, 6)


@pytest.mark.parametrize(
    ("timeouts", "per_call"),
    [
        ({}, 0.5),
        ({"media_write_timeout": 0.5}, BaseRequest.DEFAULT_NONE),
        ({"write_timeout": 0.5}, BaseRequest.DEFAULT_NONE),
    ],
    ids=["per-call", "media-default", "write-default"],
)
async def test_stalled_upload_times_out(
    timeouts: dict[str, float],
    per_call: Any,
    bot_api: BotApiStandIn,
    proxy: ProxyFactory,
) -> None:
    """An upload the server does not read is TimedOut once a write makes no progress for long."""
    bot_api.hold_bodies = True
    request = timeouts_request(bot_api, proxy("socks5").url(), **timeouts)
    try:
        async with bot_over(bot_api, request) as bot:
            started = time.monotonic()
            with pytest.raises(TimedOut, match=r"did not progress within 0\.5 s"):
                await bot.send_document(
                    7, b"x" * STALLING_UPLOAD, filename="big.bin", write_timeout=per_call
                )
            assert elapsed_since(started) < 0.5 + LATE  # the buffers fill first
    finally:
        bot_api.release()


async def test_upload_without_write_timeout_waits_for_the_server(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """write_timeout=None lets a stalled upload wait; once the server reads, it completes."""
    bot_api.hold_bodies = True
    request = timeouts_request(bot_api, proxy("socks5").url(), write_timeout=0.2)
    asyncio.get_running_loop().call_later(1.0, bot_api.release)
    async with bot_over(bot_api, request) as bot:
        message = await bot.send_document(
            7, b"x" * STALLING_UPLOAD, filename="big.bin", write_timeout=None
        )
    assert message.document is not None
    assert message.document.file_size == STALLING_UPLOAD
    assert len(bot_api.uploads[0].content) == STALLING_UPLOAD


# --- uploads and downloads -------------------------------------------------------------------


async def test_send_document_uploads_name_type_and_content(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """send_document sends the file as multipart with its name, type and bytes, and the fields."""
    hop = proxy("http")
    async with ptb_bot(bot_api, proxy=hop.url()) as bot:
        message = await bot.send_document(
            7, b"report body", filename='отчёт "q1".txt', caption="Q1"
        )
    assert message.document is not None
    assert (message.chat.id, message.document.file_size) == (7, 11)
    [upload] = bot_api.uploads
    assert (upload.field, upload.filename, upload.content_type, upload.content) == (
        "document",
        "отчёт %22q1%22.txt",  # as a browser (and httpx) quotes it
        "text/plain",
        b"report body",
    )
    assert bot_api.calls[0].form == {"chat_id": "7", "caption": "Q1"}
    assert hop.destinations == [("127.0.0.1", bot_api.port)]


async def test_uploads_reach_the_server_as_httpxrequest_sends_them(
    bot_api: BotApiStandIn, proxy: ProxyFactory, tmp_path: Path
) -> None:
    """Documents, an open file handle and a media group arrive as PTB's HTTPXRequest sends them."""
    document = tmp_path / "data.csv"
    document.write_bytes(b"a,b\n1,2\n")

    async def send_all(request: BaseRequest) -> list[tuple[Any, ...]]:
        bot_api.reset()
        async with request:
            bot = bot_with(request, bot_api)
            await bot.send_document(7, b"\x00\xff" * 1000, filename="blob.bin", caption="c")
            with document.open("rb") as handle:
                await bot.send_document(7, InputFile(handle, read_file_handle=False))
            media = [
                InputMediaDocument(b"one", filename="1.pdf"),
                InputMediaDocument(b"two", filename="2.txt"),
            ]
            with pytest.raises(InvalidToken):  # the stand-in answers 404: no sendMediaGroup
                await bot.send_media_group(7, media)
        return [
            (u.method, u.filename, u.content_type, u.content, u.field.startswith("attached"))
            for u in bot_api.uploads
        ] + [(c.method, sorted(c.form)) for c in bot_api.calls]

    reference = await send_all(HTTPXRequest())
    ours = await send_all(
        build_ptb_request(proxy=proxy("socks5").url(), api={"base": bot_api.base})
    )
    assert ours == reference
    assert ("sendDocument", "data.csv", "text/csv", b"a,b\n1,2\n", False) in ours


async def test_download_goes_through_the_route(bot_api: BotApiStandIn, proxy: ProxyFactory) -> None:
    """get_file and download fetch the file from base_file_url through the proxy."""
    hop = proxy("socks5")
    async with ptb_bot(bot_api, proxy=hop.url()) as bot:
        message = await bot.send_document(7, b"file content", filename="f.txt")
        assert message.document is not None
        file = await bot.get_file(message.document.file_id)
        content = await file.download_as_bytearray()
    assert content == b"file content"
    assert file.file_path == f"{bot_api.base}/file/bot{TOKEN}/documents/f.txt"
    assert bot_api.calls[-1].method == "file/documents/f.txt"
    assert bot_api.user_agents[-1] == PTB_AGENT


# --- long polling ----------------------------------------------------------------------------


async def test_long_poll_outlasts_the_read_timeout(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """getUpdates(timeout=2) with a 0.5 s read timeout waits the whole poll: PTB adds the two."""
    request = timeouts_request(bot_api, proxy("socks5").url(), read_timeout=0.5)
    async with bot_over(bot_api, request) as bot:
        started = time.monotonic()
        assert await bot.get_updates(timeout=2) == ()
        assert 1.9 < elapsed_since(started) < 2 + LATE
    assert bot_api.calls[0].form["timeout"] == "2"


async def test_long_poll_answers_an_update_at_once(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """An update that arrives during a long poll is answered at once, not at the poll's end."""
    async with ptb_bot(bot_api, proxy=proxy("socks5").url()) as bot:
        poll = asyncio.ensure_future(bot.get_updates(timeout=PATIENT))
        await until(lambda: bot_api.in_flight == 1, PATIENT)  # the poll waits at the server
        started = time.monotonic()
        bot_api.push_update(START)
        updates = await poll
        assert elapsed_since(started) < PATIENT / 2
    assert [update.update_id for update in updates] == [1]
    assert updates[0].message is not None
    assert updates[0].message.text == "/start"


# --- Application -----------------------------------------------------------------------------


def test_configure_application_sets_requests_urls_and_mode(bot_api: BotApiStandIn) -> None:
    """The builder gets two route requests, the stand-in's URLs and local mode from api."""
    builder = ApplicationBuilder().token(TOKEN)
    api = {"base": f"{bot_api.base}/prefix", "is_local": True}
    app = configure_application(builder, api=api, proxy="socks5://127.0.0.1:1080").build()
    bot = app.bot
    assert bot.base_url == f"{bot_api.base}/prefix/bot{TOKEN}"
    assert bot.base_file_url == f"{bot_api.base}/prefix/file/bot{TOKEN}"
    assert bot.local_mode is True
    request, updates_request = bot.request, bot._request[0]  # PTB has no public getter
    assert isinstance(request, BotSessionRequest)
    assert isinstance(updates_request, BotSessionRequest)
    assert request is not updates_request
    assert str(request.config.proxy) == "socks5://127.0.0.1:1080"


async def test_application_polls_through_the_proxy(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A real Application initialises, long-polls and handles /start, all through the proxy."""
    hop = proxy("socks5", "mia", SENTINEL)
    app = configure_application(
        ApplicationBuilder().token(TOKEN), proxy=hop.url(), api={"base": bot_api.base}
    ).build()
    handled: asyncio.Queue[str] = asyncio.Queue()

    async def start(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        assert update.message.text is not None
        await handled.put(update.message.text)

    app.add_handler(CommandHandler("start", start))
    bot_api.push_update(START)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=1, poll_interval=0)
        assert await asyncio.wait_for(handled.get(), PATIENT) == "/start"
        await app.updater.stop()
        await app.stop()
    methods = [call.method for call in bot_api.calls]
    assert methods[:3] == ["getMe", "deleteWebhook", "getUpdates"]
    # Later polls confirm update 1 with offset 2, the last one (at stop) without waiting.
    assert {call.form.get("offset") for call in bot_api.calls[3:]} == {"2"}
    assert bot_api.calls[-1].form == {"timeout": "0", "offset": "2"}
    assert set(hop.destinations) == {("127.0.0.1", bot_api.port)}


async def test_application_reports_a_dead_route_at_initialize(bot_api: BotApiStandIn) -> None:
    """Application.initialize fails with NetworkError naming the hop when the proxy is down."""
    port = free_port()
    app: Application[Any, Any, Any, Any, Any, Any] = configure_application(
        ApplicationBuilder().token(TOKEN),
        proxy=f"http://127.0.0.1:{port}",
        api={"base": bot_api.base},
    ).build()
    with pytest.raises(NetworkError, match=rf"proxy hop 1 of 1 \(http://127.0.0.1:{port}\)"):
        await app.initialize()


async def test_an_application_whose_proxy_is_down_at_start_up_leaves_nothing_open(
    bot_api: BotApiStandIn, fault_proxy: FaultProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """An Application whose proxy refuses at start-up fails to initialize and, although PTB
    never shuts its requests down then, leaves no unclosed aiohttp session and no socket open;
    route_status(app) tells why."""
    refusing = fault_proxy("socks5", step="greeting", fault="reset")
    baseline = open_fds()
    app: Application[Any, Any, Any, Any, Any, Any] = configure_application(
        ApplicationBuilder().token(TOKEN), proxy=refusing.url(), api={"base": bot_api.base}
    ).build()
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        with pytest.raises(NetworkError, match=r"proxy hop 1 of 1 \(socks5://127\.0\.0\.1:"):
            async with app:  # PTB's own way: initialize, and shutdown if that fails
                pytest.fail("initialize went through a refusing proxy")
        [status] = route_status(app)
        del app
        gc.collect()
    assert status.state == "failed"
    assert "reset" in (status.last_error or "")
    assert [str(warning.message) for warning in warned] == []
    assert "Unclosed" not in caplog.text
    assert await settle(baseline) <= baseline
    assert refusing.accepted == 1
    assert bot_api.calls == []


async def test_a_request_that_never_worked_reopens_on_the_next_call(
    bot_api: BotApiStandIn, fault_proxy: FaultProxyFactory
) -> None:
    """After a failed first request has closed the aiohttp session, the same initialised Bot
    sends the next request once the proxy works (a new session, the same routes)."""
    flaky = fault_proxy("socks5", step="greeting", fault="reset")
    request = build_ptb_request(proxy=flaky.url(), api={"base": bot_api.base})
    bot = bot_with(request, bot_api)
    await request.initialize()
    with pytest.raises(NetworkError, match="proxy hop 1 of 1"):
        await bot.get_me()
    assert [status.state for status in route_status(request)] == ["failed"]
    flaky.fault = "pass"
    assert (await bot.get_me()).id == 42
    await request.shutdown()
    assert [call.method for call in bot_api.calls] == ["getMe"]


# --- configure_application and what the builder already has ------------------------------------


def test_builder_timeouts_become_the_requests_defaults() -> None:
    """Timeouts set on the builder before configure_application are kept, per request; the
    others come from the configuration."""
    builder = (
        ApplicationBuilder()
        .token(TOKEN)
        .read_timeout(30)
        .write_timeout(None)
        .get_updates_read_timeout(40)
        .get_updates_pool_timeout(3)
    )
    app = configure_application(builder, connect_timeout=7, timeout=50).build()
    request, updates = app.bot.request, app.bot._request[0]  # PTB has no public getter
    assert isinstance(request, BotSessionRequest)
    assert isinstance(updates, BotSessionRequest)
    assert (request.read_timeout, request.write_timeout, request.connect_timeout) == (30, None, 7)
    assert (request.media_write_timeout, request.pool_timeout) == (None, 1)
    assert (updates.read_timeout, updates.pool_timeout, updates.write_timeout) == (40, 3, 50)


def test_builder_base_url_and_local_mode_are_kept_when_the_configuration_has_none() -> None:
    """A builder's own base_url, base_file_url and local_mode(True) stay when api is left at
    its default."""
    builder = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url("http://127.0.0.1:8081/custom/bot")
        .base_file_url("http://127.0.0.1:8081/custom/file/bot")
        .local_mode(True)
    )
    bot = configure_application(builder, proxy="socks5://127.0.0.1:1080").build().bot
    assert bot.base_url == f"http://127.0.0.1:8081/custom/bot{TOKEN}"
    assert bot.base_file_url == f"http://127.0.0.1:8081/custom/file/bot{TOKEN}"
    assert bot.local_mode is True


def test_builder_base_url_agreeing_with_api_base_is_accepted(bot_api: BotApiStandIn) -> None:
    """A builder base_url equal to the one api.base gives is no conflict."""
    builder = ApplicationBuilder().token(TOKEN).base_url(f"{bot_api.base}/bot")
    bot = configure_application(builder, api={"base": bot_api.base}).build().bot
    assert bot.base_url == f"{bot_api.base}/bot{TOKEN}"


def test_what_the_builder_has_that_cannot_be_combined_is_refused_with_the_fix(
    bot_api: BotApiStandIn,
) -> None:
    """A proxy, pool size, socket options, HTTP/2 or a base URL other than api.base on the
    builder raise one ConfigError listing each, with what to do, and no password."""
    builder = (
        ApplicationBuilder()
        .token(TOKEN)
        .proxy(f"http://u:{SENTINEL}@127.0.0.1:3128")
        .connection_pool_size(8)
        .get_updates_socket_options([])
        .http_version("2")
        .base_url("http://127.0.0.1:1/elsewhere/bot")
    )
    with pytest.raises(ConfigError) as refused:
        configure_application(builder, api={"base": bot_api.base})
    assert str(refused.value).splitlines() == [
        "invalid botsession configuration (5 problems):",
        "  - ApplicationBuilder.proxy(): the route comes from botsession's configuration: remove "
        ".proxy(…) and set proxy in bot.yaml, BOT_PROXY or configure_application(builder, proxy=…)",
        "  - ApplicationBuilder.connection_pool_size(): botsession's requests hold up to limit "
        "connections each: remove .connection_pool_size(…) and set limit in bot.yaml, BOT_LIMIT "
        "or configure_application(builder, limit=…)",
        "  - ApplicationBuilder.http_version(): botsession's requests speak HTTP/1.1 only: remove "
        ".http_version(…)",
        "  - ApplicationBuilder.get_updates_socket_options(): botsession's connections take no "
        "socket options: remove .get_updates_socket_options(…)",
        f"  - ApplicationBuilder.base_url(): the configuration's api.base is {bot_api.base}: name "
        "the Bot API server once, in api.base (and remove .base_url(…)) or with .base_url(…) "
        "(and leave api.base out)",
    ]
    assert SENTINEL not in repr(refused.value.problems)


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        (
            lambda b: b.request(HTTPXRequest()),
            "ApplicationBuilder.request(): configure_application",
        ),
        (
            lambda b: b.get_updates_request(HTTPXRequest()),
            "ApplicationBuilder.get_updates_request(): configure_application",
        ),
        (lambda b: b.bot(Bot(TOKEN)), "ApplicationBuilder.bot(): the bot given brings its own"),
        (lambda b: b.token(TOKEN).local_mode(False), "ApplicationBuilder.local_mode(): the "),
    ],
    ids=["request", "get_updates_request", "bot", "local_mode"],
)
def test_a_builder_with_its_own_requests_is_refused(given: Any, refused: str) -> None:
    """A builder that already has a request or a Bot, or local_mode(False) against
    api.is_local, is refused with a ConfigError saying what to do; PTB's bare RuntimeError
    never reaches the user."""
    builder = given(ApplicationBuilder())
    with pytest.raises(ConfigError) as error:
        configure_application(builder, api={"base": "http://127.0.0.1:8081", "is_local": True})
    [line] = str(error.value).splitlines()[1:]
    assert line.startswith(f"  - {refused}")


# --- life cycle --------------------------------------------------------------------------------


async def test_initialize_and_shutdown_are_idempotent(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """Repeated initialize and shutdown are harmless; a request shut down can start again."""
    request = build_ptb_request(proxy=proxy("socks5").url(), api={"base": bot_api.base})
    bot = bot_with(request, bot_api)
    with pytest.raises(NetworkError, match="BotSessionRequest is not initialized"):
        await bot.get_me()
    await request.initialize()
    await request.initialize()
    assert (await bot.get_me()).id == 42
    await request.shutdown()
    await request.shutdown()
    with pytest.raises(NetworkError, match="not initialized"):
        await bot.get_me()
    async with request:
        assert (await bot.get_me()).id == 42
    assert len(bot_api.calls) == 2


async def test_async_with_bot_initialises_through_the_route(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """``async with Bot(...)`` as users write it fetches the bot user through the proxy."""
    hop = proxy("socks4a")
    request = build_ptb_request(proxy=hop.url(), api={"base": bot_api.base})
    async with Bot(TOKEN, base_url=f"{bot_api.base}/bot", request=request) as bot:
        assert bot.username == "standin_bot"
    assert hop.destinations == [("127.0.0.1", bot_api.port)]


# --- imports ---------------------------------------------------------------------------------


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_import_botsession_does_not_import_telegram() -> None:
    """``import botsession`` loads neither telegram nor aiogram; botsession.ptb loads no aiogram."""
    result = run_python(
        "import sys, botsession\n"
        "print('telegram' in sys.modules, 'aiogram' in sys.modules)\n"
        "import botsession.ptb\n"
        "print('telegram' in sys.modules, 'aiogram' in sys.modules)\n"
    )
    assert result.stdout.split() == ["False", "False", "True", "False"], result.stderr


def test_missing_python_telegram_bot_names_the_extra() -> None:
    """Without python-telegram-bot, importing botsession.ptb says which extra to install."""
    result = run_python(
        "import sys\n"
        "sys.modules['telegram'] = None  # as if it were not installed\n"
        "import botsession.ptb\n"
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "botsession.errors.MissingExtraError: botsession.ptb needs python-telegram-bot 22: "
        "pip install 'botsession[ptb]' (or: pip install -e '.[ptb]' from a checkout)"
    )


async def test_every_route_timing_out_is_timed_out(
    bot_api: BotApiStandIn, silent_server: SilentServer
) -> None:
    """When every route times out, PTB gets TimedOut with the AllRoutesFailedError as cause."""
    route = f"socks5://127.0.0.1:{silent_server.port}"
    settings = {"proxy": route, "fallback": [route], "connect_timeout": 0.3}
    async with ptb_bot(bot_api, **settings) as bot:
        with pytest.raises(TimedOut) as caught:
            await bot.get_me()
    cause = caught.value.__cause__
    assert isinstance(cause, AllRoutesFailedError)
    assert [error.reason for _number, error in cause.failures] == ["timeout", "timeout"]


async def test_routes_failing_differently_are_a_network_error_not_timed_out(
    bot_api: BotApiStandIn, silent_server: SilentServer
) -> None:
    """A refused route and a silent one are NetworkError (PTB retries a TimedOut differently)."""
    settings = {
        "proxy": f"http://127.0.0.1:{free_port()}",
        "fallback": [f"http://127.0.0.1:{silent_server.port}"],
        "connect_timeout": 0.3,
    }
    async with ptb_bot(bot_api, **settings) as bot:
        with pytest.raises(NetworkError) as caught:
            await bot.get_me()
    assert not isinstance(caught.value, TimedOut)
    cause = caught.value.__cause__
    assert isinstance(cause, AllRoutesFailedError)
    assert [error.reason for _number, error in cause.failures] == ["refused", "timeout"]
