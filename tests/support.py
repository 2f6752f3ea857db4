"""What the tests and the benchmark share: loopback constants, free ports, the stand-in's bot,
the sentinel password, proxy URLs, and small aiogram helpers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import gc
import os
import socket
import struct
import sys
import time
import traceback
import warnings
from collections.abc import AsyncIterator, Iterator
from types import FrameType, TracebackType
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

# Time in tests. The suite must pass on a busy shared 2-core CI machine, which runs it up to 10x
# slower than an idle one, so no test holds work to a tight time limit: it bounds the work
# (values built, calls made, connections accepted), a lower bound shows a timeout was waited
# out, and an upper bound on time is only ever far above what a 10x slower machine needs.
LATE = 5
"""How much later than its timeout a test lets a timeout be reported (seconds): it catches a
timeout that is not applied (a client's own, 60 s or more) without failing on a slow machine."""
PATIENT = 30
"""A connect timeout no test waits out (seconds). A test showing that a failure comes at once,
not at the timeout, gives the client this one, checks the failure's reason, and that it came
in under ``PATIENT / 2``; waiting for the timeout would take twice that."""


def reset(transport: asyncio.BaseTransport) -> None:
    """Abort ``transport``'s connection with an RST rather than a FIN (SO_LINGER on, timeout 0),
    as a crashed or impatient peer does."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


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


def open_fds() -> int:
    """File descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


async def settle(baseline: int, timeout: float = 5.0) -> int:
    """Wait (bounded) until the servers' side of closed connections is gone too; the open file
    descriptors then."""
    deadline = time.monotonic() + timeout
    while open_fds() > baseline and time.monotonic() < deadline:
        gc.collect()
        await asyncio.sleep(0.05)
    return open_fds()


def free_port() -> int:
    """A loopback TCP port that nothing listened on a moment ago (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# --- work instead of time ----------------------------------------------------------------------


class TooMuchWork(BaseException):
    """Raised inside the code under test once it made more calls than the test allows (not an
    Exception, so that no ``except Exception`` there turns it into something else)."""


@dataclasses.dataclass
class Work:
    calls: int = 0
    """Function calls made so far, Python and C."""


@contextlib.contextmanager
def bounded_work(limit: int) -> Iterator[Work]:
    """Count the function calls made in this thread inside the block; the one past ``limit``
    raises TooMuchWork, so runaway work fails at once instead of running for minutes. A bound
    on work holds on any machine, however busy, where a bound on seconds does not."""
    work = Work()

    def count(_frame: FrameType, event: str, _arg: object) -> None:
        if event in ("call", "c_call"):
            work.calls += 1
            if work.calls > limit:
                raise TooMuchWork(f"more than {limit} function calls")

    sys.setprofile(count)
    try:
        yield work
    finally:
        sys.setprofile(None)


# --- where a secret could travel: tracebacks recorded with their local variables -------------


def forms_of_the_secret() -> list[str]:
    """The sentinel as it may appear: plain, percent-encoded, in Basic auth (base64)."""
    basic = [base64.b64encode(f"{user}:{SENTINEL}".encode()).decode() for user in ("u", "v")]
    return [SENTINEL, quote(SENTINEL, safe=""), *basic]


def exceptions_in_chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]


def frames(tb: TracebackType | None) -> Iterator[Any]:
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def deep_texts(value: Any, depth: int = 0) -> Iterator[str]:
    """What a locals-recording error reporter shows of a value: containers and dataclasses are
    walked (as Sentry and rich do), everything else is shown by its repr."""
    yield repr(value)
    if depth > 6:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from deep_texts(key, depth + 1)
            yield from deep_texts(item, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from deep_texts(item, depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from deep_texts(getattr(value, field.name, None), depth + 1)


def traceback_texts(error: BaseException) -> list[str]:
    """What a locals-recording error reporter (Sentry, rich, ``capture_locals``) could show of
    ``error``: its traceback with locals, and str, repr and every local of its whole chain."""
    report = "".join(
        traceback.TracebackException(
            type(error), error, error.__traceback__, capture_locals=True
        ).format()
    )
    texts = [report]
    for exception in exceptions_in_chain(error):
        texts += [str(exception), repr(exception)]
        for frame in frames(exception.__traceback__):
            for name, value in frame.f_locals.items():
                texts += [f"{frame.f_code.co_name}.{name}={text}" for text in deep_texts(value)]
    return texts


def leaks(texts: list[str]) -> list[str]:
    """The texts that show the sentinel in any of its forms."""
    forms = forms_of_the_secret()
    return [text for text in texts if any(form in text for form in forms)]


@contextlib.asynccontextmanager
async def nothing_left_open() -> AsyncIterator[None]:
    """The block leaves no file descriptor open (the servers' side of closed connections is
    waited for)."""
    baseline = open_fds()
    yield
    assert await settle(baseline) <= baseline
