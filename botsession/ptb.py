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

from .errors import ConfigError, MissingExtraError, Problem, ProxyHopError, RouteError

try:
    from telegram._utils.defaultvalue import DefaultValue
    from telegram.error import NetworkError, TelegramError, TimedOut
    from telegram.request import BaseRequest
except ImportError as missing:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingExtraError(__name__, "python-telegram-bot 22", "ptb", missing.name) from missing

import aiohttp
from aiohttp import hdrs
from aiohttp.payload import Payload

from .config_schema import DEFAULT_API_BASE, BotSessionConfig
from .factory import ConfigInput, Loaded, load_outcome, taking_arguments_of
from .net.connector import MaskedResponse, connector_arguments, resending
from .net.routing import ConnectorSpec, Router, RouteStatus
from .net.upload import CHUNK_SIZE, TimedPayload, causes, write_timeout_in
from .redaction import Secrets, mask_tokens_in_log, redact_exception, redact_url, token_secrets

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
    default as the module says; pass a number of seconds or None (no limit) to set one.

    ``initialize`` readies it and ``shutdown`` closes it (both idempotent, as PTB calls them
    once per Bot that uses the request); after a shutdown, ``initialize`` readies it again.
    The aiohttp session is made by the first request, so a request never used (the
    ``getUpdates`` request of a bot that does not poll) opens nothing. While the session has
    not answered a single request, a request that fails (and none other in flight) closes it
    again, and the next request makes a new one on the same routes: PTB does not shut down the
    requests of an ``Application`` whose ``initialize`` failed (its proxy down at start-up),
    and nothing may stay open then.
    """

    __slots__ = (
        "_answered",
        "_config",
        "_connect_timeout",
        "_connector_arguments",
        "_connector_type",
        "_in_flight",
        "_media_write_timeout",
        "_pool_timeout",
        "_read_timeout",
        "_ready",
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
        connector_type, arguments = connector_arguments(ConnectorSpec.from_config(config))
        router = arguments.get("router")
        self._router: Router | None = None
        if isinstance(router, Router):
            # One for the request's life: each new aiohttp session goes on with the routes'
            # state (and route_status).
            self._router = arguments["router"] = _CallTimeoutRouter(
                router.routes,
                connect_timeout=router.connect_timeout,  # each request sets its own
                retry_primary_after=router.retry_primary_after,
                hedge_after=router.hedge_after,
                limit=router.sockets.limit,
            )
        self._connector_type, self._connector_arguments = connector_type, arguments
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._ready = False
        """Between ``initialize`` and ``shutdown``: requests may be made."""
        self._answered = False
        """The current aiohttp session has answered a request."""
        self._in_flight = 0

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
        ``AiohttpSession.route_status``). Empty for a direct connection; after ``shutdown``,
        the state the routes were last in."""
        return () if self._router is None else self._router.route_status()

    async def initialize(self) -> None:
        """Ready the request; the aiohttp session is made by the first request."""
        self._ready = True

    async def shutdown(self) -> None:
        """Close the aiohttp session and its connections (nothing to do if not open)."""
        self._ready = False
        await self._close_session()

    def _open_session(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        """The aiohttp session, made now if there is none (inside the running loop, as aiohttp
        requires). No await: concurrent requests cannot make two."""
        if not self._ready:
            raise RuntimeError(f"This {type(self).__name__} is not initialized!")
        if self._session is not None and self._slots is not None and not self._session.closed:
            return self._session, self._slots
        connector = self._connector_type(**self._connector_arguments)
        self._session = aiohttp.ClientSession(
            connector=connector,
            middlewares=resending(connector),
            # Each request brings its own; nothing is limited in total, as with httpx.
            timeout=aiohttp.ClientTimeout(total=None),
            headers={"User-Agent": self.USER_AGENT},
            response_class=MaskedResponse,  # its repr shows the token masked
        )
        self._slots = asyncio.Semaphore(self._config.limit)
        self._answered = False
        return self._session, self._slots

    async def _close_session(self) -> None:
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
        session, slots = self._open_session()
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
        self._in_flight += 1
        try:
            async with session.request(
                method,
                url,
                data=data,
                timeout=self._aiohttp_timeout(connect, read),
                allow_redirects=False,  # as httpx: PTB sees a 3xx as the error it is
            ) as response:
                self._answered = True
                return response.status, await response.read()
        except BaseException as error:
            del url, request_data, data  # out of this frame's locals, for tracebacks
            redact_exception(error, secrets)
            if not isinstance(error, (TimeoutError, aiohttp.ClientError)):
                raise
            failure = _telegram_error(error, where, connect=connect, read=read)
            cause = _cause(error)
        finally:
            self._in_flight -= 1
            _CALL_CONNECT_TIMEOUT.reset(connect_set)
            slots.release()
        if not self._answered and not self._in_flight and session is self._session:
            # Nothing has worked yet (PTB's getMe at start-up): leave nothing open, as PTB
            # may never call shutdown (see the class). The next request opens a new session.
            await self._close_session()
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

    What the builder was given before is kept where it fits: its timeouts
    (``.read_timeout(30)``, ``.get_updates_read_timeout(…)``, …) become the requests' defaults,
    and its own ``.base_url()``, ``.base_file_url()`` and ``.local_mode(True)`` stay when the
    configuration leaves ``api`` at its default. What cannot be combined (its own
    ``.request()``, ``.proxy()``, ``.connection_pool_size()``, ``.socket_options()``,
    ``.http_version("2")``, a ``.bot()`` or ``.updater()``, a base URL other than
    ``api.base``) raises ``ConfigError``, each problem saying what to do instead.
    """
    loaded = load_outcome(
        config, env_prefix=env_prefix, env_file=env_file, profile=profile, **overrides
    )
    del config, overrides  # raw input (passwords) stays out of the traceback's locals
    if isinstance(loaded, ConfigError):
        raise loaded
    settings = loaded.config
    problems = _builder_conflicts(builder, settings)
    if problems:
        raise ConfigError(problems)
    requests = {
        prefix: BotSessionRequest(settings, **_taken_timeouts(builder, prefix))
        for prefix in _REQUEST_PREFIXES
    }
    builder.request(requests[""]).get_updates_request(requests["get_updates_"])
    base = settings.api.base
    if not _is_set(builder, "base_url"):
        builder.base_url(f"{base}/bot")
    if not _is_set(builder, "base_file_url"):
        builder.base_file_url(f"{base}/file/bot")
    return builder.local_mode(settings.api.is_local or _set_value(builder, "local_mode") is True)


_REQUEST_PREFIXES = ("", "get_updates_")
"""PTB's builder has each request setting twice: for API calls, and ``get_updates_…``."""
_TIMEOUTS = {
    "": ("connect_timeout", "read_timeout", "write_timeout", "media_write_timeout", "pool_timeout"),
    "get_updates_": ("connect_timeout", "read_timeout", "write_timeout", "pool_timeout"),
}
_NOT_SET = object()


def _set_value(builder: object, name: str) -> object:
    """What ``builder.<name>(…)`` was given, or ``_NOT_SET`` (PTB keeps a ``DefaultValue``)."""
    value = getattr(builder, f"_{name}", _NOT_SET)
    return _NOT_SET if isinstance(value, DefaultValue) else value


def _is_set(builder: object, name: str) -> bool:
    return _set_value(builder, name) is not _NOT_SET


def _taken_timeouts(builder: object, prefix: str) -> dict[str, Any]:
    """The timeouts given to ``builder`` for one request, removed from it (PTB refuses a
    request beside them): they become that request's defaults."""
    taken: dict[str, Any] = {}
    for name in _TIMEOUTS[prefix]:
        value = _set_value(builder, prefix + name)
        if value is not _NOT_SET:
            taken[name] = value
            setattr(builder, f"_{prefix}{name}", BaseRequest.DEFAULT_NONE)
    http_version = _set_value(builder, f"{prefix}http_version")
    if http_version is not _NOT_SET:  # "1.1" (anything else is refused): PTB's default again
        setattr(builder, f"_{prefix}http_version", DefaultValue("1.1"))
    return taken


def _builder_conflicts(
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any], settings: BotSessionConfig
) -> list[Problem]:
    """What ``builder`` was given that botsession's requests cannot honour, each with the fix."""
    problems: list[Problem] = []

    def refuse(method: str, fix: str) -> None:
        problems.append(Problem(f"ApplicationBuilder.{method}()", "", fix))

    for prefix in _REQUEST_PREFIXES:
        if _is_set(builder, f"{prefix}request"):
            refuse(
                f"{prefix}request",
                "configure_application gives the builder botsession's requests: remove "
                f".{prefix}request(…), or leave configure_application out and pass "
                "build_ptb_request() to .request() and .get_updates_request() yourself",
            )
        if _is_set(builder, f"{prefix}proxy"):
            refuse(
                f"{prefix}proxy",
                "the route comes from botsession's configuration: remove "
                f".{prefix}proxy(…) and set proxy in bot.yaml, BOT_PROXY or "
                "configure_application(builder, proxy=…)",
            )
        if _is_set(builder, f"{prefix}connection_pool_size"):
            refuse(
                f"{prefix}connection_pool_size",
                "botsession's requests hold up to limit connections each: remove "
                f".{prefix}connection_pool_size(…) and set limit in bot.yaml, BOT_LIMIT or "
                "configure_application(builder, limit=…)",
            )
        if _is_set(builder, f"{prefix}socket_options"):
            refuse(
                f"{prefix}socket_options",
                "botsession's connections take no socket options: remove "
                f".{prefix}socket_options(…)",
            )
        http_version = _set_value(builder, f"{prefix}http_version")
        if http_version is not _NOT_SET and http_version != "1.1":
            refuse(
                f"{prefix}http_version",
                f"botsession's requests speak HTTP/1.1 only: remove .{prefix}http_version(…)",
            )
    for holder in ("bot", "updater"):
        if _set_value(builder, holder) not in (_NOT_SET, None):
            refuse(
                holder,
                f"the {holder} given brings its own requests: leave configure_application out "
                "and make the Bot with telegram.Bot(token, request=build_ptb_request(…), "
                "get_updates_request=build_ptb_request(…), base_url=…)",
            )
    base = settings.api.base
    if base != DEFAULT_API_BASE:
        for name, wanted in (("base_url", f"{base}/bot"), ("base_file_url", f"{base}/file/bot")):
            if _set_value(builder, name) not in (_NOT_SET, wanted):
                refuse(
                    name,
                    f"the configuration's api.base is {redact_url(base)}: name the Bot API "
                    f"server once, in api.base (and remove .{name}(…)) or with .{name}(…) "
                    "(and leave api.base out)",
                )
    if settings.api.is_local and _set_value(builder, "local_mode") is False:
        refuse(
            "local_mode",
            "the configuration's api.is_local is true: remove .local_mode(False), or set "
            "api.is_local to false",
        )
    return problems


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
