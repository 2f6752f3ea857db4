"""The bot token never shows: every adapter (aiogram, python-telegram-bot, httpx, plain aiohttp)
and every way a request can fail (connect, TLS, read, write, a malformed response, timeout,
cancellation), directly and through a proxy.

The token sits in every Bot API URL (``/bot<id>:<secret>/getMe``) and aiohttp quotes URLs in its
errors. Each cell makes a real request that fails and looks everywhere the secret could travel:
the message, ``str``/``repr``/args of every exception in the ``__cause__``/``__context__``
chain, the formatted traceback, the traceback recorded with local variables (as Sentry, rich or
``capture_locals`` record it), log records at DEBUG, warnings, and OpenTelemetry spans and
metrics.

One boundary is the frameworks', not botsession's: the frames of the framework's own code
*above* botsession hold what the application gave them — python-telegram-bot's ``Bot`` (whose
``repr`` is ``Bot[token=…]`` by design) and the URL in its request methods, httpx's client
methods and aiohttp's ``ClientSession._request`` the URL they were called with. Those frames
are left out of the locals check (``FRAMEWORK_FRAMES`` names them); everything else —
botsession's frames, the frameworks' frames below botsession, every chained exception with the
rest of its traceback — must be clean.
"""

from __future__ import annotations

import asyncio
import logging
import os
import traceback
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal, get_args
from urllib.parse import quote

import aiohttp
import httpx
import pytest
import trustme
import yarl
from aiogram import Bot as AiogramBot
from aiogram.exceptions import TelegramNetworkError
from aiogram.types import BufferedInputFile
from telegram import Bot as PtbBot
from telegram.error import NetworkError

from botsession import (
    ConfigError,
    build_client_session,
    build_httpx_client,
    build_httpx_transport,
    build_ptb_request,
    build_session_from_config,
    load_config,
)
from botsession.cli import main as cli_main
from botsession.net.connector import masking_errors
from botsession.redaction import redact_exception, redact_url, token_secrets

from .conftest import ProxyFactory
from .failover_support import Recorded, recorded
from .faultproxy import FaultProxyFactory
from .servers import BackgroundLoop, MisbehavingApi, SilentServer
from .support import deep_texts, exceptions_in_chain, frames, free_port

SECRET = "SW33P-t0ken_secret-Part"
"""The secret part of the token: it must never show."""
TOKEN = f"4242:{SECRET}"
SHOWN = "/bot4242:***/"
"""How the token shows where the URL is worth showing."""
TIMEOUT = 1.0
"""timeout and connect_timeout of the cells that wait for one (seconds)."""
UPLOAD = 32 * 1024 * 1024
"""An upload larger than the socket buffers on the way: still being written when the server
resets the connection."""

Adapter = Literal["aiogram", "ptb", "httpx", "aiohttp"]
ADAPTERS: tuple[Adapter, ...] = get_args(Adapter)
Failure = Literal[
    "connect-refused",
    "connect-timeout",
    "tls",
    "read-closed",
    "read-reset",
    "read-truncated",
    "malformed",
    "timeout",
    "write",
    "cancel",
]
FAILURES: tuple[Failure, ...] = get_args(Failure)

FRAMEWORK_FRAMES: dict[Adapter, Callable[[str, str], bool]] = {
    "aiogram": lambda _file, _function: False,  # aiogram's frames above botsession hold no URL
    "ptb": lambda file, _function: f"{os.sep}telegram{os.sep}" in file,
    "httpx": lambda file, _function: file.endswith(os.path.join("httpx", "_client.py")),
    "aiohttp": lambda file, function: (
        file.endswith(os.path.join("aiohttp", "client.py")) and function == "_request"
    ),
}
"""The frames of the error reaching the application whose locals are the framework's own."""


# --- where the secret could travel ------------------------------------------------------------


def shown_texts(error: BaseException, adapter: Adapter) -> Iterator[str]:
    """Everything an application, its logs or an error reporter could show of ``error``."""
    yield "".join(traceback.format_exception(error))
    chained = list(exceptions_in_chain(error))
    for exception in chained:
        yield str(exception)
        yield repr(exception)
        yield repr(exception.args)
        yield from getattr(exception, "__notes__", ())
        for frame in frames(exception.__traceback__):
            code = frame.f_code
            if code.co_filename == __file__:
                continue  # the test's own frames hold the token on purpose
            if FRAMEWORK_FRAMES[adapter](code.co_filename, code.co_name):
                continue
            for name, value in frame.f_locals.items():
                for text in deep_texts(value):
                    yield f"{code.co_filename}:{code.co_name}: {name}={text}"


def leaked(texts: Iterator[str]) -> list[str]:
    return [text for text in texts if SECRET in text]


@dataclass
class Observed:
    """What a failed request left behind."""

    error: BaseException
    records: list[logging.LogRecord]
    warned: list[warnings.WarningMessage]


def assert_nothing_shows(observed: Observed, adapter: Adapter, otel: Recorded) -> None:
    """The secret is in no text of the error, no log record, no warning, no span or metric."""
    found = leaked(shown_texts(observed.error, adapter))
    assert not found, found[0][:500]
    formatter = logging.Formatter()
    for record in observed.records:
        text = record.getMessage()
        if record.exc_info:
            text += formatter.formatException(record.exc_info)
        assert SECRET not in text, text[:500]
    for warning in observed.warned:
        assert SECRET not in str(warning.message)
    telemetry = [str(span.to_json()) for span in otel.spans()]
    telemetry += [
        str(point.attributes)
        for name in ("botsession.proxy.connect.duration", "botsession.route.switches")
        for point in otel.points(name)
    ]
    assert not [text for text in telemetry if SECRET in text]


# --- the requests -----------------------------------------------------------------------------


async def request(adapter: Adapter, base: str, settings: dict[str, Any], *, upload: bool) -> None:
    """One Bot API call (``getMe``, or an upload) through ``adapter``, which must fail."""
    config = {"api": {"base": base}, "timeout": TIMEOUT, "connect_timeout": TIMEOUT}
    config |= settings
    if adapter == "aiogram":
        async with AiogramBot(TOKEN, session=build_session_from_config(**config)) as bot:
            if upload:
                await bot.send_document(7, BufferedInputFile(b"x" * UPLOAD, "big.bin"))
            else:
                await bot.get_me()
    elif adapter == "ptb":
        async with build_ptb_request(**config) as ptb_request:
            bot = PtbBot(TOKEN, base_url=f"{base}/bot", request=ptb_request)
            if upload:
                await bot.send_document(7, b"x" * UPLOAD, filename="big.bin")
            else:
                await bot.get_me()
    elif adapter == "httpx":
        async with build_httpx_client(**config) as client:
            method = "sendDocument" if upload else "getMe"
            content = b"x" * UPLOAD if upload else b"{}"
            response = await client.post(f"{base}/bot{TOKEN}/{method}", content=content)
            response.json()
    else:
        async with build_client_session(**config) as session:
            method = "sendDocument" if upload else "getMe"
            data = b"x" * UPLOAD if upload else b"{}"
            async with session.post(f"{base}/bot{TOKEN}/{method}", data=data) as response:
                await response.json()


async def observe(attempt: Callable[[], Awaitable[None]], *, cancel_when: Any = None) -> Observed:
    """Run ``attempt``, which must fail (or, with ``cancel_when``, be cancelled once that
    returns true), and collect what it left behind."""
    handler = _Collecting()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            error = await _failure_of(attempt, cancel_when)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    return Observed(error, handler.records, list(warned))


async def _failure_of(attempt: Callable[[], Awaitable[None]], cancel_when: Any) -> BaseException:
    task = asyncio.ensure_future(attempt())
    if cancel_when is not None:
        for _ in range(2000):  # bounded: 20 s
            if cancel_when() or task.done():
                break
            await asyncio.sleep(0.01)
        task.cancel()
    try:
        await task
    except BaseException as error:  # the failure is what the test looks at
        return error
    raise AssertionError("the request did not fail")


class _Collecting(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


EXPECTED: dict[Adapter, tuple[type[BaseException], ...]] = {
    "aiogram": (TelegramNetworkError,),
    "ptb": (NetworkError,),
    "httpx": (httpx.TransportError,),
    "aiohttp": (aiohttp.ClientError, asyncio.TimeoutError),
}
"""The framework's own errors for a failed request (cancellation aside)."""


# --- the servers ------------------------------------------------------------------------------


@pytest.fixture
def broken_api(background: BackgroundLoop) -> Iterator[MisbehavingApi]:
    server = MisbehavingApi(background).start()
    yield server
    server.stop()


@pytest.fixture
def untrusted_api(background: BackgroundLoop) -> Iterator[MisbehavingApi]:
    """A Bot API over TLS whose certificate comes from a CA that nobody trusts."""
    server = MisbehavingApi(background, tls_ca=trustme.CA()).start()
    yield server
    server.stop()


@dataclass
class Targets:
    """Servers that fail each request in their own way."""

    broken_api: MisbehavingApi
    untrusted_api: MisbehavingApi
    silent_server: SilentServer

    def base(self, failure: Failure) -> str:
        """The Bot API base that fails the way ``failure`` says."""
        if failure == "connect-refused":
            return f"http://127.0.0.1:{free_port()}"
        if failure == "connect-timeout":
            return f"https://127.0.0.1:{self.silent_server.port}"  # TLS never completes
        if failure == "tls":
            return self.untrusted_api.base
        self.broken_api.mode = {
            "read-closed": "close",
            "read-reset": "reset",
            "read-truncated": "truncated",
            "malformed": "garbage",
            "timeout": "silent",
            "write": "reset",
            "cancel": "silent",
        }[failure]
        return self.broken_api.base


@pytest.fixture
def targets(
    broken_api: MisbehavingApi, untrusted_api: MisbehavingApi, silent_server: SilentServer
) -> Targets:
    return Targets(broken_api, untrusted_api, silent_server)


@pytest.mark.parametrize("routed", [False, True], ids=["direct", "proxied"])
@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_no_failure_shows_the_token(
    adapter: Adapter, failure: Failure, routed: bool, targets: Targets, proxy: ProxyFactory
) -> None:
    """A request that fails this way, through this adapter, shows the token's secret nowhere."""
    otel = recorded()
    base = targets.base(failure)
    settings = {"proxy": proxy("socks5").url()} if routed else {}
    api = targets.broken_api
    cancel_when = (lambda: api.requests > 0) if failure == "cancel" else None
    observed = await observe(
        lambda: request(adapter, base, settings, upload=failure == "write"),
        cancel_when=cancel_when,
    )
    error = observed.error
    if failure == "cancel":
        assert isinstance(error, asyncio.CancelledError)
        assert api.requests == 1
    else:
        assert isinstance(error, EXPECTED[adapter]), repr(error)
    assert_nothing_shows(observed, adapter, otel)


async def test_where_the_url_is_shown_the_token_shows_as_its_id_and_stars(
    broken_api: MisbehavingApi,
) -> None:
    """An error that quotes the URL (a malformed answer) keeps it, with ``bot<id>:***``."""
    broken_api.mode = "garbage"
    for adapter in ("aiogram", "ptb", "aiohttp"):
        observed = await observe(
            lambda adapter=adapter: request(adapter, broken_api.base, {}, upload=False)
        )
        assert SHOWN in str(observed.error) + str(observed.error.__cause__), adapter


async def test_a_direct_connect_timeout_names_the_url_without_the_token(
    silent_server: SilentServer,
) -> None:
    """httpx's ConnectTimeout and aiohttp's ConnectionTimeoutError, which quote the URL, show
    the token as ``bot<id>:***`` (they showed it whole)."""
    base = f"https://127.0.0.1:{silent_server.port}"
    settings = {"timeout": 30.0, "connect_timeout": TIMEOUT}
    for adapter, kind in (("httpx", httpx.ConnectTimeout), ("aiohttp", aiohttp.ClientError)):
        observed = await observe(
            lambda adapter=adapter: request(adapter, base, settings, upload=False)
        )
        assert isinstance(observed.error, kind)
        assert f"127.0.0.1:{silent_server.port}{SHOWN}getMe" in str(observed.error)


async def test_the_plain_session_masks_errors_raised_from_its_responses(
    broken_api: MisbehavingApi,
) -> None:
    """``raise_for_status()`` and ``json()`` of a non-JSON answer, and the response's repr,
    show the URL with ``bot<id>:***`` and its escapes as they were; ``response.url`` is still
    the real URL."""
    broken_api.mode = "html"
    async with build_client_session(api={"base": broken_api.base}) as session:
        url = f"{broken_api.base}/bot{TOKEN}/getMe?text=a%20b%26c"
        async with session.post(url) as response:
            assert str(response.url) == url
            assert SECRET not in repr(response)
            with pytest.raises(aiohttp.ContentTypeError) as not_json:
                await response.json()
            with pytest.raises(aiohttp.ClientResponseError) as failed:
                response.raise_for_status()
    masked = url.replace(f"/bot{TOKEN}/", SHOWN)
    for caught in (not_json.value, failed.value):
        assert SHOWN in str(caught)
        assert not leaked(shown_texts(caught, "aiohttp"))
        assert (str(caught.request_info.url), str(caught.request_info.real_url)) == (masked, masked)


async def test_httpx_request_log_lines_show_the_token_masked(
    broken_api: MisbehavingApi, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx logs each request's URL at INFO; through botsession's transport the token shows
    as ``bot<id>:***`` there."""
    broken_api.mode = "html"
    caplog.set_level(logging.INFO, logger="httpx")
    async with build_httpx_client(api={"base": broken_api.base}) as client:
        response = await client.post(f"{broken_api.base}/bot{TOKEN}/getMe")
    assert response.status_code == 502
    lines = [record.getMessage() for record in caplog.records if record.name == "httpx"]
    assert lines
    assert all(SECRET not in line and SHOWN in line for line in lines)


@pytest.mark.parametrize("routed", [False, True], ids=["direct", "proxied"])
@pytest.mark.parametrize("failure", ["connect-refused", "read-reset", "malformed", "timeout"])
async def test_a_relative_url_of_the_httpx_client_shows_the_token_nowhere(
    failure: Failure, routed: bool, targets: Targets, proxy: ProxyFactory
) -> None:
    """build_httpx_client's base URL is api.base: a request to the relative /bot<token>/getMe
    that fails shows the token's secret nowhere, as one to the full URL does."""
    otel = recorded()
    config: dict[str, Any] = {"timeout": TIMEOUT, "connect_timeout": TIMEOUT}
    config["api"] = {"base": targets.base(failure)}
    if routed:
        config["proxy"] = proxy("socks5").url()

    async def attempt() -> None:
        async with build_httpx_client(**config) as client:
            (await client.post(f"/bot{TOKEN}/getMe", content=b"{}")).json()

    observed = await observe(attempt)
    assert isinstance(observed.error, httpx.TransportError), repr(observed.error)
    assert_nothing_shows(observed, "httpx", otel)


async def test_a_relative_url_without_its_slash_is_refused_unsent(
    broken_api: MisbehavingApi,
) -> None:
    """``bot<token>/getMe`` (no leading "/"), which httpx reads as the scheme ``bot<id>`` and
    would send as the path ``/<secret>/getMe``, is refused before anything is sent, saying how
    to write it, without the secret."""
    otel = recorded()

    async def attempt() -> None:
        async with build_httpx_client(api={"base": broken_api.base}) as client:
            await client.post(f"bot{TOKEN}/getMe")

    observed = await observe(attempt)
    assert isinstance(observed.error, httpx.InvalidURL), repr(observed.error)
    assert str(observed.error).startswith(
        "a relative URL starts with '/', as in client.post(f'/bot{token}/getMe')"
    )
    assert broken_api.requests == 0
    assert_nothing_shows(observed, "httpx", otel)


@pytest.mark.parametrize("answer", ["refused", "garbage", "ok"])
def test_probe_never_prints_a_token_given_in_the_url(
    answer: str,
    broken_api: MisbehavingApi,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``botsession probe --url …/bot<token>/getMe`` prints the URL as ``…/bot<id>:***/…``,
    whatever the target answers, and exits 0 or 3."""
    port = free_port() if answer == "refused" else broken_api.port
    broken_api.mode = "garbage" if answer == "garbage" else "html"
    code = cli_main(["probe", "--url", f"http://127.0.0.1:{port}/bot{TOKEN}/getMe"])
    out, err = capsys.readouterr()
    assert code == (0 if answer == "ok" else 3)
    assert SECRET not in out + err
    assert SHOWN in out


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://127.0.0.1/bot{TOKEN}/getMe",
        f"http://[::1/bot{TOKEN}/getMe",
        f"http://127.0.0.1:99999/bot{TOKEN}",
    ],
)
def test_probe_refuses_a_bad_url_without_printing_its_token(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``--url`` that is not an http(s) URL is a usage error (exit 2) that shows the token
    masked."""
    with pytest.raises(SystemExit) as exited:
        cli_main(["probe", "--url", url])
    out, err = capsys.readouterr()
    assert exited.value.code == 2
    assert SECRET not in out + err
    assert "bot4242:***" in err


# --- redaction itself -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"https://api.telegram.org/bot{TOKEN}/getMe",
            "https://api.telegram.org/bot4242:***/getMe",
        ),
        (
            f"url='http://h:1/file/bot{TOKEN}/photos/a.jpg'",
            "url='http://h:1/file/bot4242:***/photos/a.jpg'",
        ),
        (f"GET /bot4242%3A{SECRET}/getMe?x=1", "GET /bot4242%3A***/getMe?x=1"),
        (f"(see /bot{TOKEN})", "(see /bot4242:***)"),
        (f'"/bot{TOKEN}"', '"/bot4242:***"'),
        ("/bot/getMe and /botfather: not tokens", "/bot/getMe and /botfather: not tokens"),
        (f"/bot{TOKEN}/a /bot1:{SECRET}x/b", "/bot4242:***/a /bot1:***/b"),
    ],
)
def test_a_bot_token_in_a_url_shows_as_its_id_and_stars(text: str, expected: str) -> None:
    """The secret part of a token in a Bot API URL path is masked; the bot's id stays."""
    assert redact_url(text) == expected


def test_token_masking_is_linear_on_hostile_text() -> None:
    """A megabyte of near-tokens is masked in one pass (the pattern cannot backtrack)."""
    hostile = "/bot" + "1" * 500_000 + "/bot1:" + "a" * 500_000
    masked = redact_url(hostile)
    assert masked.endswith("/bot1:***")
    assert token_secrets(hostile) == {"a" * 500_000}


class _ComputedText(Exception):
    """An exception whose text comes from state redaction cannot reach."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._text = lambda: f"failed: {url}"

    def __str__(self) -> str:
        return self._text()


def test_a_chained_exception_that_cannot_be_cleaned_is_replaced() -> None:
    """A chained exception whose text keeps the token is replaced by a RedactedError naming its
    type, with the token masked; its own chain is kept."""
    from botsession.errors import RedactedError

    root = OSError("underneath")
    inner = _ComputedText(f"http://h/bot{TOKEN}/getMe")
    inner.__cause__ = root
    outer = RuntimeError("outer")
    outer.__cause__ = inner
    redact_exception(outer)
    stand_in = outer.__cause__
    assert isinstance(stand_in, RedactedError)
    assert str(stand_in) == f"{__name__}._ComputedText: failed: http://h/bot4242:***/getMe"
    assert stand_in.__cause__ is root


def test_redaction_clears_the_locals_of_finished_frames_only() -> None:
    """Frames that have finished lose their local variables; the one still running keeps them."""

    def fails(url: str) -> None:
        raise ValueError(url)

    kept = "still here"
    with pytest.raises(ValueError, match="bot4242") as caught:
        fails(f"http://h/bot{TOKEN}/getMe")
    redact_exception(caught.value)
    mine, theirs = frames(caught.value.__traceback__)
    assert mine.f_locals["kept"] == kept
    assert theirs.f_locals == {}
    assert str(caught.value) == "http://h/bot4242:***/getMe"


def test_known_secrets_are_scrubbed_from_every_text_of_a_chain() -> None:
    """A secret given by the caller (the Bot's token) is scrubbed wherever it appears, also
    outside a URL: in args, string attributes, OSError's strerror and notes."""
    cause = OSError(5, f"write failed for {SECRET}")
    error = ConnectionError(f"token {SECRET}")
    error.note_me = f"also {SECRET}"  # type: ignore[attr-defined]
    error.add_note(f"note {SECRET}")
    error.__cause__ = cause
    redact_exception(error, {SECRET})
    assert str(error) == "token ***"
    assert error.note_me == "also ***"  # type: ignore[attr-defined]
    assert error.__notes__ == ["note ***"]
    assert cause.strerror == "write failed for ***"


def test_an_unshown_secret_keeps_its_holder_unchanged() -> None:
    """Values that show no secret are left as the very same objects."""
    args = ("plain", 5, Path("/tmp/x"), ("a", "b"))
    error = ValueError(*args)
    redact_exception(error, {SECRET})
    assert error.args == args
    assert all(new is old for new, old in zip(error.args, args, strict=True))


@pytest.mark.parametrize(
    "base",
    [
        f"https://api.telegram.org/bot{TOKEN}",
        f"http://127.0.0.1:8081/tg/bot{TOKEN}/",
        f"https://api.telegram.org/file/bot{TOKEN}",
    ],
)
def test_a_bot_token_written_into_api_base_is_refused_without_showing_it(
    base: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A token pasted into ``api.base`` is a ConfigError naming the place and saying where the
    token goes instead, in Python and from ``botsession check`` (exit 1), and the secret is in
    neither."""
    (tmp_path / "bot.yaml").write_text(f"api:\n  base: {base}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "bot.yaml")
    [problem] = caught.value.problems
    assert str(problem).endswith(
        "/bot.yaml:2:9: api.base: the base URL holds a bot token (…/bot<id>:***): give the "
        "server's base URL alone, such as https://api.telegram.org; the token goes to the Bot, "
        "and the session adds /bot<token>/<method> to every request itself"
    )
    assert not leaked(shown_texts(caught.value, "aiogram"))
    assert cli_main(["check", str(tmp_path / "bot.yaml")]) == 1
    out, err = capsys.readouterr()
    assert "holds a bot token" in err
    assert SECRET not in out + err


async def test_the_plain_session_middleware_scrubs_a_token_its_error_does_not_print() -> None:
    """An error from sending a request whose message does not show the URL, but which keeps it
    percent-encoded in an attribute (no Bot API URL to recognise there), loses the token's
    secret too: the middleware knows the request's URL."""
    url = yarl.URL(f"https://api.telegram.org/bot{TOKEN}/getMe")

    class KeepsTheUrl(aiohttp.ClientOSError):
        pass

    async def handler(request: Any) -> aiohttp.ClientResponse:
        error = KeepsTheUrl("connection reset by peer")
        error.sent_to = quote(str(request.url), safe="")  # type: ignore[attr-defined]
        raise error

    with pytest.raises(KeepsTheUrl) as caught:
        await masking_errors(SimpleNamespace(url=url), handler)  # type: ignore[arg-type]
    sent_to: str = caught.value.sent_to  # type: ignore[attr-defined]
    assert sent_to == "https%3A%2F%2Fapi.telegram.org%2Fbot4242%3A***%2FgetMe"
    assert str(caught.value) == "connection reset by peer"


async def test_a_reset_relayed_through_the_route_is_reported_as_a_reset(
    broken_api: MisbehavingApi, fault_proxy: FaultProxyFactory
) -> None:
    """When the Bot API resets the connection and the proxy relays the reset, the plain
    session's error says "Connection reset by peer" (not "Server disconnected"), caused by the
    ConnectionResetError, without the token."""
    broken_api.mode = "reset"
    relay = fault_proxy("socks5")
    async with build_client_session(proxy=relay.url(), api={"base": broken_api.base}) as session:
        with pytest.raises(aiohttp.ClientOSError) as caught:
            async with session.post(f"{broken_api.base}/bot{TOKEN}/getMe") as response:
                await response.read()
    assert "Connection reset by peer" in str(caught.value)
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    assert not leaked(shown_texts(caught.value, "aiohttp"))


@pytest.mark.parametrize("client_kind", ["build_httpx_client", "own client"])
async def test_raise_for_status_of_an_httpx_response_shows_the_token_nowhere(
    client_kind: str, broken_api: MisbehavingApi
) -> None:
    """httpx's ``raise_for_status()`` quotes the request's URL; on a response that came
    through botsession's transport the token shows as its id and stars, never its secret."""
    broken_api.mode = "html"  # a 502 page, as a reverse proxy in front of the API gives
    otel = recorded()

    async def attempt() -> None:
        if client_kind == "build_httpx_client":
            async with build_httpx_client(api={"base": broken_api.base}) as client:
                (await client.post(f"/bot{TOKEN}/getMe")).raise_for_status()
        else:
            transport = build_httpx_transport(proxy=None)
            async with httpx.AsyncClient(transport=transport) as client:
                (await client.post(f"{broken_api.base}/bot{TOKEN}/getMe")).raise_for_status()

    observed = await observe(attempt)
    assert isinstance(observed.error, httpx.HTTPStatusError), repr(observed.error)
    assert SHOWN in str(observed.error)
    assert observed.error.response.status_code == 502
    assert_nothing_shows(observed, "httpx", otel)
