"""python-telegram-bot over botsession routes: a ``BaseRequest`` on the aiohttp route connector.

``BotSessionRequest`` sends PTB's requests through the configured route — chains, credentials,
fallback routes, ``limit``, the TLS settings and ``connect_timeout`` included — with the same
aiohttp connector as the aiogram session (not with httpx). ``build_ptb_request`` and
``configure_application`` build it from ``bot.yaml`` / ``BOT_…`` variables / keyword arguments::

    from telegram.ext import ApplicationBuilder
    from botsession.ptb import configure_application

    app = configure_application(ApplicationBuilder().token(token), "bot.yaml").build()

Timeouts are PTB's four, each overridable per call (``DEFAULT_NONE``: the request's default,
``None``: no limit). Their defaults come from the configuration where it has the setting:

- ``connect_timeout``: ``connect_timeout`` of the configuration (10 s): the time to connect
  through one whole route, every handshake and the TLS handshake included; each fallback route
  gets it anew.
- ``read_timeout``: ``timeout`` of the configuration (60 s): the longest wait for the next piece
  of the answer. PTB adds the long-poll time of ``getUpdates`` to it.
- ``write_timeout`` (and ``media_write_timeout`` for uploads): ``timeout`` too: the longest wait
  for one chunk of the request to be written.
- ``pool_timeout``: PTB's 1 s: the longest wait for a free connection when ``limit`` requests
  are in flight.

Errors: a route that fails is ``telegram.error.NetworkError`` with botsession's message naming
the hop (the ``RouteError`` is its ``__cause__``), or ``telegram.error.TimedOut`` when the hop
did not answer in time; a timeout while writing or reading is ``TimedOut``; any other aiohttp
failure is ``NetworkError``. PTB's retries and polling treat them as they do HTTPXRequest's.

This is the only module that imports python-telegram-bot (``pip install 'botsession[ptb]'``).
"""

from __future__ import annotations

import asyncio
import math
import os
import re
from collections.abc import AsyncIterator
from contextvars import ContextVar
from os import PathLike
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

from .errors import ConfigError, MissingExtraError, ProxyHopError, RouteError

try:
    from telegram._utils.defaultvalue import DefaultValue
    from telegram.error import NetworkError, TelegramError, TimedOut
    from telegram.request import BaseRequest
except ImportError as missing:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingExtraError(__name__, "python-telegram-bot 22", "ptb", missing.name) from missing

import aiohttp
from aiohttp import hdrs
from aiohttp.payload import Payload

from .config_schema import BotSessionConfig
from .factory import ConfigInput, Loaded, load_outcome, taking_arguments_of
from .net.connector import MaskedResponse, connector_arguments, resending
from .net.routing import ConnectorSpec, Router, RouteStatus
from .net.upload import CHUNK_SIZE, TimedPayload, causes, write_timeout_in
from .redaction import Secrets, mask_tokens_in_log, redact_exception, token_secrets

if TYPE_CHECKING:
    from telegram._utils.types import ODVInput
    from telegram.ext import ApplicationBuilder
    from telegram.request import RequestData

__all__ = ["BotSessionRequest", "build_ptb_request", "configure_application"]

POOL_TIMEOUT = 1.0
"""PTB's default pool timeout (seconds); the configuration has no such setting."""
POOL_TIMEOUT_MESSAGE = (
    "Pool timeout: All connections in the connection pool are occupied. Request was *not* "
    "sent to Telegram. Consider adjusting the connection pool size or the pool timeout."
)
"""PTB's own message (HTTPXRequest's) for a request that found no free connection."""

_CALL_CONNECT_TIMEOUT: ContextVar[float | None] = ContextVar("botsession_ptb_connect_timeout")
"""The connect timeout of the request being made in this task (unset: the configured one)."""
_HTML5_ESCAPES = {'"': "%22", "\\": "\\\\"} | {
    chr(code): f"%{code:02X}" for code in range(0x20) if code != 0x1B
}
"""How the HTML5 form encoding (and httpx) escapes a name in a Content-Disposition header."""
_HTML5_SPECIAL = re.compile("|".join(re.escape(char) for char in _HTML5_ESCAPES))

_CONNECTION_TIMEOUT: Any = getattr(aiohttp, "ConnectionTimeoutError", ())
"""aiohttp's connect timeout (3.10 and later; before, connect and read timeouts look alike)."""

BuilderT = TypeVar("BuilderT", bound="ApplicationBuilder[Any, Any, Any, Any, Any, Any]")


class BotSessionRequest(BaseRequest):
    """A ``telegram.request.BaseRequest`` that sends through the route of ``config``.

    ``config`` is a validated ``BotSessionConfig`` (``botsession.load_config``). The timeouts
    default as the module says; pass a number of seconds or None (no limit) to set one. The
    aiohttp session is made in ``initialize`` and closed in ``shutdown`` (both idempotent, as
    PTB calls them once per Bot that uses the request); after a shutdown, ``initialize`` makes
    a new one.
    """

    __slots__ = (
        "_config",
        "_connect_timeout",
        "_media_write_timeout",
        "_pool_timeout",
        "_read_timeout",
        "_router",
        "_session",
        "_slots",
        "_uses_route",
        "_write_timeout",
    )

    def __init__(
        self,
        config: BotSessionConfig,
        *,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        media_write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> None:
        if not isinstance(config, BotSessionConfig):
            raise TypeError(
                "BotSessionRequest takes a BotSessionConfig (botsession.load_config); "
                "build_ptb_request takes a file, settings and keyword arguments"
            )
        # PTB's Bot logs its Bot API URL, token included, at DEBUG ("Set Bot API URL: …").
        mask_tokens_in_log("telegram.Bot", "telegram.ext.ExtBot")
        self._config = config
        self._connect_timeout = _seconds("connect_timeout", connect_timeout, config.connect_timeout)
        self._read_timeout = _seconds("read_timeout", read_timeout, config.timeout)
        self._write_timeout = _seconds("write_timeout", write_timeout, config.timeout)
        self._media_write_timeout = _seconds(
            "media_write_timeout", media_write_timeout, self._write_timeout
        )
        self._pool_timeout = _seconds("pool_timeout", pool_timeout, POOL_TIMEOUT)
        self._uses_route = bool(config.routes)
        self._session: aiohttp.ClientSession | None = None
        self._router: Router | None = None
        self._slots: asyncio.Semaphore | None = None

    @property
    def config(self) -> BotSessionConfig:
        """The validated settings the connections are made with."""
        return self._config

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout in seconds (PTB adds the long-poll time of getUpdates)."""
        return self._read_timeout

    @property
    def write_timeout(self) -> float | None:
        """The default write timeout in seconds (requests without files)."""
        return self._write_timeout

    @property
    def media_write_timeout(self) -> float | None:
        """The default write timeout in seconds for requests that upload files."""
        return self._media_write_timeout

    @property
    def connect_timeout(self) -> float | None:
        """The default connect timeout in seconds (per route tried)."""
        return self._connect_timeout

    @property
    def pool_timeout(self) -> float | None:
        """The default wait for a free connection in seconds."""
        return self._pool_timeout

    def __repr__(self) -> str:
        route = self._config.proxy  # its repr never shows a password
        return f"{type(self).__name__}(proxy={route!r}, limit={self._config.limit})"

    def route_status(self) -> tuple[RouteStatus, ...]:
        """Each route's state (``active``, ``standby``, ``failed``), last error, when that
        changed and each hop's last connect time, primary first (see
        ``AiohttpSession.route_status``). Empty for a direct connection and before
        ``initialize``; after ``shutdown``, the state the routes were last in."""
        return () if self._router is None else self._router.route_status()

    async def initialize(self) -> None:
        """Make the aiohttp session (inside the running loop, as aiohttp requires)."""
        # No await before the session exists: concurrent calls (PTB initialises a Bot's two
        # requests together, and they may be one object) cannot make two.
        if self._session is not None and not self._session.closed:
            return
        connector_type, arguments = connector_arguments(ConnectorSpec.from_config(self._config))
        router = arguments.get("router")
        if isinstance(router, Router):
            self._router = arguments["router"] = _CallTimeoutRouter(
                router.routes,
                connect_timeout=router.connect_timeout,  # each request sets its own
                retry_primary_after=router.retry_primary_after,
                hedge_after=router.hedge_after,
                limit=router.sockets.limit,
            )
        connector = connector_type(**arguments)
        self._session = aiohttp.ClientSession(
            connector=connector,
            middlewares=resending(connector),
            # Each request brings its own; nothing is limited in total, as with httpx.
            timeout=aiohttp.ClientTimeout(total=None),
            headers={"User-Agent": self.USER_AGENT},
            response_class=MaskedResponse,  # its repr shows the token masked
        )
        self._slots = asyncio.Semaphore(self._config.limit)

    async def shutdown(self) -> None:
        """Close the aiohttp session and its connections (nothing to do if not open)."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(  # noqa: PLR0917 - BaseRequest's signature
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """See ``telegram.request.BaseRequest.do_request``."""
        session, slots = self._session, self._slots
        if session is None or session.closed or slots is None:
            raise RuntimeError(f"This {type(self).__name__} is not initialized!")
        files = request_data.multipart_data if request_data is not None else None
        read = self._read_timeout if _is_default(read_timeout) else _given(read_timeout)
        connect = self._connect_timeout if _is_default(connect_timeout) else _given(connect_timeout)
        pool = self._pool_timeout if _is_default(pool_timeout) else _given(pool_timeout)
        if _is_default(write_timeout):
            write = self._media_write_timeout if files else self._write_timeout
        else:
            write = _given(write_timeout)
        data = _body(request_data, files, write)
        # The URL holds the token (…/bot<token>/getMe): what may be shown of it is its host,
        # and its secret is scrubbed from whatever leaves here.
        where, secrets = _server_of(url), Secrets(token_secrets(url))
        await _acquire(slots, pool)
        failure: TelegramError | None = None
        cause: BaseException | None = None
        connect_set = _CALL_CONNECT_TIMEOUT.set(connect)
        try:
            async with session.request(
                method,
                url,
                data=data,
                timeout=self._aiohttp_timeout(connect, read),
                allow_redirects=False,  # as httpx: PTB sees a 3xx as the error it is
            ) as response:
                return response.status, await response.read()
        except BaseException as error:
            del url, request_data, data  # out of this frame's locals, for tracebacks
            redact_exception(error, secrets)
            if not isinstance(error, (TimeoutError, aiohttp.ClientError)):
                raise
            failure = _telegram_error(error, where, connect=connect, read=read)
            cause = _cause(error)
        finally:
            _CALL_CONNECT_TIMEOUT.reset(connect_set)
            slots.release()
        # Raised outside the except block, so that the botsession error is the cause and the
        # aiohttp error wrapping it is not also a context dragging its chain along.
        raise failure from cause

    def _aiohttp_timeout(self, connect: float | None, read: float | None) -> aiohttp.ClientTimeout:
        if self._uses_route:
            # The router gives each route its connect timeout (the context variable): an
            # overall limit here would leave no time for the fallback routes.
            return aiohttp.ClientTimeout(total=None, sock_read=read)
        # Direct: DNS, TCP and TLS; the semaphore has already waited for the pool.
        return aiohttp.ClientTimeout(
            total=None, connect=connect, sock_connect=connect, sock_read=read
        )


class _CallTimeoutRouter(Router):
    """A ``Router`` whose connect timeout is the one of the request being made."""

    _configured: float

    @property
    def connect_timeout(self) -> float:
        seconds = _CALL_CONNECT_TIMEOUT.get(self._configured)
        return math.inf if seconds is None else seconds  # None: no limit

    @connect_timeout.setter
    def connect_timeout(self, seconds: float) -> None:
        self._configured = seconds


class _UploadPayload(TimedPayload):
    """A file of an upload, each chunk within the write timeout (httpx's write timeout bounds
    each socket write, too)."""

    def __init__(
        self,
        content: bytes | IO[bytes],
        *,
        content_type: str,
        filename: str,
        write_timeout: float | None,
    ) -> None:
        super().__init__(
            content,
            write_timeout=write_timeout,
            size=_size_of(content),
            content_type=content_type,
            filename=filename,
        )

    async def stream_chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        while chunk := await loop.run_in_executor(None, self._content.read, CHUNK_SIZE):
            yield chunk


# --- builders -------------------------------------------------------------------------------


@taking_arguments_of(load_outcome)
def build_ptb_request(loaded: Loaded) -> BotSessionRequest:
    """A python-telegram-bot request that sends every request through the configured route.

    Arguments are those of ``load_config``; bad configuration raises ``ConfigError``. Give it
    to ``telegram.Bot(token, request=..., base_url=...)``, or let ``configure_application`` set
    up an ``ApplicationBuilder``.
    """
    return BotSessionRequest(loaded.config)


def configure_application(
    builder: BuilderT,
    config: ConfigInput = None,
    *,
    env_prefix: str = "BOT_",
    env_file: str | PathLike[str] | None = None,
    profile: str | None = None,
    **overrides: Any,
) -> BuilderT:
    """``builder`` (a ``telegram.ext.ApplicationBuilder``) set up from the configuration.

    It gets a ``request`` and a separate ``get_updates_request`` (PTB wants its own for long
    polling) over the route, ``base_url`` and ``base_file_url`` from ``api.base`` and
    ``local_mode`` from ``api.is_local``. Other arguments are those of ``load_config``.
    Returns the builder, to go on with ``.token(...)``, ``.build()``.
    """
    loaded = load_outcome(
        config, env_prefix=env_prefix, env_file=env_file, profile=profile, **overrides
    )
    del config, overrides  # raw input (passwords) stays out of the traceback's locals
    if isinstance(loaded, ConfigError):
        raise loaded
    settings = loaded.config
    base = settings.api.base
    return (
        builder.request(BotSessionRequest(settings))
        .get_updates_request(BotSessionRequest(settings))
        .base_url(f"{base}/bot")
        .base_file_url(f"{base}/file/bot")
        .local_mode(settings.api.is_local)
    )


# --- helpers --------------------------------------------------------------------------------


def _is_default(value: object) -> bool:
    # PTB passes DEFAULT_NONE for "not given"; HTTPXRequest treats every DefaultValue so.
    return isinstance(value, DefaultValue)


def _given(value: ODVInput[float]) -> float | None:
    return cast("float | None", value)


def _seconds(name: str, value: ODVInput[float], default: float | None) -> float | None:
    """A default timeout: ``default`` unless given, None for no limit, else positive seconds."""
    if isinstance(value, DefaultValue):
        return default
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, not {value!r}")
    return float(value)


async def _acquire(slots: asyncio.Semaphore, pool_timeout: float | None) -> None:
    """Wait for one of the ``limit`` connections, at most ``pool_timeout`` seconds."""
    if not slots.locked():
        await slots.acquire()  # free: no wait, whatever the timeout (0 included)
        return
    try:
        await asyncio.wait_for(slots.acquire(), pool_timeout)
    except TimeoutError:
        raise TimedOut(POOL_TIMEOUT_MESSAGE) from None


def _body(
    request_data: RequestData | None,
    files: dict[str, tuple[str, bytes | IO[bytes], str]] | None,
    write_timeout: float | None,
) -> Any:
    """What HTTPXRequest sends: the parameters as a form, multipart with the files if any."""
    if request_data is None:
        return None
    parameters = request_data.json_parameters
    if not files:
        return parameters  # application/x-www-form-urlencoded
    form = aiohttp.MultipartWriter("form-data")
    parts: list[Payload] = []
    for name, value in parameters.items():
        part = form.append(value)
        part.headers[hdrs.CONTENT_DISPOSITION] = _disposition(name)
        parts.append(part)
    for name, (filename, content, mimetype) in files.items():
        upload = _UploadPayload(
            content, content_type=mimetype, filename=filename, write_timeout=write_timeout
        )
        upload.headers[hdrs.CONTENT_DISPOSITION] = _disposition(name, filename)
        parts.append(form.append_payload(upload))
    for part in parts:
        # Older aiohttp gives each part a length, which form-data parts do not have (RFC 7578).
        part.headers.popall(hdrs.CONTENT_LENGTH, None)
    return form


def _disposition(name: str, filename: str | None = None) -> str:
    """A part's Content-Disposition as httpx writes it: names in UTF-8, as browsers send them.

    Telegram shows a file name quoted the RFC 2231 or percent-encoded way (aiohttp's) as it is,
    with the percent signs; UTF-8 it shows as the name.
    """
    value = f'form-data; name="{_html5_quoted(name)}"'
    if filename is not None:
        value += f'; filename="{_html5_quoted(filename)}"'
    return value


def _html5_quoted(text: str) -> str:
    return _HTML5_SPECIAL.sub(lambda match: _HTML5_ESCAPES[match.group(0)], text)


def _size_of(content: bytes | IO[bytes]) -> int | None:
    """The number of bytes to send, when it is known (else the body is sent chunked)."""
    if isinstance(content, bytes):
        return len(content)
    try:
        return os.fstat(content.fileno()).st_size - content.tell()
    except (AttributeError, OSError, ValueError):
        return None


def _cause(error: BaseException) -> BaseException:
    """The botsession error behind ``error`` if there is one, else ``error`` itself."""
    return next((e for e in causes(error) if isinstance(e, RouteError)), error)


def _telegram_error(
    error: BaseException, where: str, *, connect: float | None, read: float | None
) -> TelegramError:
    """The PTB error for a request that failed with an aiohttp error or a timeout."""
    chain = list(causes(error))
    route = next((e for e in chain if isinstance(e, RouteError)), None)
    if route is not None:
        message = str(route)  # names the hop; never holds a password
        return TimedOut(message) if _route_timed_out(route) else NetworkError(message)
    written = write_timeout_in(error)
    if written is not None:
        return TimedOut(
            f"Timed out: writing the request did not progress within {written.seconds:g} s"
        )
    if isinstance(error, _CONNECTION_TIMEOUT):
        return TimedOut(f"Timed out: no connection to {where}{_within(connect, 'connect')}")
    if any(isinstance(e, asyncio.TimeoutError) for e in chain):
        return TimedOut(f"Timed out: no answer{_within(read, 'read')}")
    return NetworkError(f"aiohttp.{type(error).__name__}: {error}")  # redacted already


def _server_of(url: str) -> str:
    """``host:port`` of ``url``, for messages (aiohttp says what is wrong with a bad URL)."""
    try:
        return urlsplit(url).netloc
    except ValueError:
        return "the Bot API server"


def _within(seconds: float | None, kind: str) -> str:
    return "" if seconds is None else f" within the {seconds:g} s {kind} timeout"


def _route_timed_out(error: RouteError) -> bool:
    """Whether the route failed only for want of an answer in time (every route, if several)."""
    if isinstance(error, ProxyHopError):
        return error.reason == "timeout"
    failures = getattr(error, "failures", ())
    return bool(failures) and all(hop_error.reason == "timeout" for _, hop_error in failures)
