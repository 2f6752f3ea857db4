"""httpx over botsession's proxy routes: ``build_httpx_transport`` and ``build_httpx_client``.

httpx builds each request (URL, headers, cookies, authentication, redirects, decoding) and this
transport sends it as it is through an aiohttp session on botsession's route connector: the
data path aiogram sessions use, with its chains, fallback routes, ``connect_timeout``, ``limit``
and TLS settings, TLS with the server included in the route's connect phase (so a TLS failure
names its hop and moves on to the next route). aiohttp only carries the request here: it sends
httpx's method, target, headers and body unchanged, keeps no cookies, follows no redirects and
decompresses nothing.

Failures are httpx's own exceptions. A route that cannot be connected through raises a
``ProxyHopError`` (or ``AllRoutesFailedError``) that is also an ``httpx.ConnectError``, or an
``httpx.ConnectTimeout`` when it timed out; nothing was sent then. Later failures map as httpx's
own transport maps them: a read timeout is ``httpx.ReadTimeout``, a server that hangs up or
breaks HTTP is ``httpx.RemoteProtocolError``, a connection reset ``httpx.ReadError``.

Timeouts: each route's connect phase is bounded by ``connect_timeout`` (httpx's ``connect``
timeout applies to direct connections only: it would cut a fallback short); httpx's ``read``
timeout bounds each wait for data, ``write`` each chunk of the request body written, and
``pool`` the wait for a free connection.

This is the only module that imports httpx (``pip install 'botsession[httpx]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import (
    AllRoutesFailedError,
    MissingExtraError,
    ProxyHopError,
    RouteError,
    framework_error,
)

try:
    import httpx
except ImportError as missing:
    raise MissingExtraError(__name__, "httpx", "httpx", missing.name) from missing

import aiohttp
from yarl import URL

from .factory import Loaded, load_outcome, taking_arguments_of
from .net.connector import MaskedResponse, connector_arguments, resending
from .net.routing import ConnectorSpec
from .net.upload import TimedPayload, write_timeout_in
from .redaction import Secrets, mask_tokens_in_log, redact_exception, token_secrets

if TYPE_CHECKING:
    from .config_schema import ProxyRoute
    from .net.routing import Router, RouteStatus

SKIPPED_AUTO_HEADERS = ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")
"""Headers aiohttp would add when httpx's request has none (someone removed them on purpose)."""


# --- the public builders -----------------------------------------------------------------


@taking_arguments_of(load_outcome)
def build_httpx_transport(loaded: Loaded) -> RouteTransport:
    """An httpx transport (a ``RouteTransport``) that sends every request through the
    configured route; its ``route_status()`` tells the routes' state.

    Give it to ``httpx.AsyncClient(transport=...)``: httpx then ignores the proxy environment
    variables. Pass no ``proxy=`` (nor ``mounts=``) too: httpx would put that proxy in front of
    this transport for every request. Building it opens nothing and needs no event loop; it
    is used on the loop of its first request.
    """
    return RouteTransport(ConnectorSpec.from_config(loaded.config))


@taking_arguments_of(load_outcome)
def build_httpx_client(loaded: Loaded) -> RouteClient:
    """An ``httpx.AsyncClient`` (a ``RouteClient``) over the configured route, with
    ``timeout`` as its timeouts and the Bot API server (``api.base``) as its base URL:
    ``await client.post(f"/bot{token}/getMe")``.

    Close it when done (``async with`` or ``await client.aclose()``).
    """
    settings = loaded.config
    return RouteClient(
        transport=RouteTransport(ConnectorSpec.from_config(settings)),
        base_url=settings.api.base,
        timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
        # The configuration is complete (trust_env was applied when it was read): httpx must
        # not look for proxies or certificates in the environment on its own.
        trust_env=False,
    )


class RouteClient(httpx.AsyncClient):
    """The ``httpx.AsyncClient`` that ``build_httpx_client`` makes: httpx's client, with the
    Bot API server as its base URL, ``route_status()`` and ``transport``.

    A relative URL starts with "/" (``/bot<token>/getMe``, below the base URL's path); one
    without it (``bot<token>/getMe``) is refused with ``httpx.InvalidURL``: httpx would read
    ``bot<id>:`` as a URL scheme and send the token's secret as a path, where nothing knows
    to mask it.
    """

    @property
    def transport(self) -> RouteTransport:
        """The transport carrying this client's requests through the route."""
        transport = self._transport
        if not isinstance(transport, RouteTransport):  # pragma: no cover - set in __init__
            raise TypeError(f"this client's transport is {type(transport).__name__}")
        return transport

    def route_status(self) -> tuple[RouteStatus, ...]:
        """Each route's state (see ``RouteTransport.route_status``); empty for a direct
        connection."""
        return self.transport.route_status()

    def build_request(
        self, method: str, url: httpx.URL | str, *args: Any, **kwargs: Any
    ) -> httpx.Request:
        """httpx's ``build_request``, refusing a relative URL that httpx would misread."""
        if _misread_relative(url):
            del url, args, kwargs  # the URL holds the token: out of the traceback's locals
            raise httpx.InvalidURL(
                "a relative URL starts with '/', as in client.post(f'/bot{token}/getMe'): "
                "without it httpx reads 'bot<id>:' as a URL scheme"
            )
        return super().build_request(method, url, *args, **kwargs)


def _misread_relative(url: httpx.URL | str) -> bool:
    """Whether ``url`` is ``bot<id>:<secret>/getMe``, which httpx reads as scheme ``bot<id>``,
    path ``<secret>/getMe`` (and merges with the base URL as a relative one)."""
    parsed = httpx.URL(url)
    return parsed.scheme not in {"", "http", "https"} and not parsed.host


# --- the transport -------------------------------------------------------------------------


class RouteTransport(httpx.AsyncBaseTransport):
    """An httpx transport sending requests through the routes of a ``ConnectorSpec``
    (directly when it has none), with an aiohttp session made on first use."""

    def __init__(self, spec: ConnectorSpec) -> None:
        # httpx logs each request's URL at INFO ("HTTP Request: POST https://…/bot<token>/…").
        mask_tokens_in_log("httpx")
        self.spec = spec
        self._connector_type, self._connector_arguments = connector_arguments(spec)
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(spec.limit)
        self._closed = False

    @property
    def router(self) -> Router | None:
        """The routes and which one is active; None for direct connections."""
        router: Router | None = self._connector_arguments.get("router")
        return router

    @property
    def route(self) -> ProxyRoute | None:
        """The route new connections go through first; None for direct connections."""
        return None if self.router is None else self.router.route

    def route_status(self) -> tuple[RouteStatus, ...]:
        """Each route's state (``active``, ``standby``, ``failed``), last error, when that
        changed and each hop's last connect time, primary first; empty for a direct
        connection (see ``AiohttpSession.route_status``)."""
        return () if self.router is None else self.router.route_status()

    def __repr__(self) -> str:
        routes = len(self.spec.routes)
        more = f", {routes} routes" if routes > 1 else ""
        return f"RouteTransport({self.route!r}{more}, limit={self.spec.limit})"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        secrets = Secrets(token_secrets(str(request.url)))
        try:
            return await self._send(request)
        except BaseException as error:
            # The URL holds the token (…/bot<token>/getMe) and aiohttp's errors quote it, as
            # the request's repr does: neither may leave here.
            del request
            redact_exception(error, secrets)
            raise

    async def _send(self, request: httpx.Request) -> httpx.Response:
        session = self._open_session()
        await self._take_slot(request)
        failure: RouteError | None = None
        try:
            with _httpx_exceptions(request):
                response = await session.request(
                    request.method,
                    _url(request.url),
                    headers=_headers(request),
                    data=_body(request),
                    allow_redirects=False,  # httpx follows redirects itself, if asked to
                    timeout=_timeout(request),
                    server_hostname=request.extensions.get("sni_hostname"),
                )
        except RouteError as error:
            failure = error
        except BaseException:
            self._slots.release()
            raise
        if failure is not None:
            self._slots.release()
            # Raised outside the except block, so that the error is not its own context.
            raise as_httpx_error(failure, request)
        version = response.version or aiohttp.HttpVersion11  # set once the head is read
        extensions: dict[str, Any] = {
            "http_version": f"HTTP/{version.major}.{version.minor}".encode("ascii"),
        }
        if response.reason is not None:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        return _TokenSafeResponse(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=_ResponseBody(response, request, self._slots.release),
            extensions=extensions,
        )

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            if self._closed:
                raise RuntimeError("this botsession httpx transport is closed")
            # Made here, in the event loop, as aiohttp requires.
            connector = self._connector_type(**self._connector_arguments)
            self._session = aiohttp.ClientSession(
                connector=connector,
                middlewares=resending(connector),
                cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies
                skip_auto_headers=SKIPPED_AUTO_HEADERS,
                auto_decompress=False,  # httpx decodes
                trust_env=False,
                response_class=MaskedResponse,  # its repr shows the token masked
            )
        return self._session

    async def _take_slot(self, request: httpx.Request) -> None:
        """Wait for one of the ``limit`` connections, within httpx's pool timeout.

        aiohttp's connector keeps the same limit, but cannot tell waiting for a connection
        from making one (the route's connect phase, which has its own timeout).
        """
        if not self._slots.locked():
            await self._slots.acquire()  # at once
            return
        pool: float | None = request.extensions.get("timeout", {}).get("pool")
        try:
            await asyncio.wait_for(self._slots.acquire(), pool)
        except TimeoutError:
            message = (
                f"all {self.spec.limit} connections (limit) stayed busy for the "
                f"{pool:g} s pool timeout"
            )
            raise httpx.PoolTimeout(message, request=request) from None


def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    timeouts = request.extensions.get("timeout", {})
    # connect: aiohttp's sock_connect, used by direct connections only (routes bound their
    # connect phase by connect_timeout, per route). pool: see RouteTransport._take_slot.
    return aiohttp.ClientTimeout(
        total=None, sock_connect=timeouts.get("connect"), sock_read=timeouts.get("read")
    )


def as_httpx_error(error: RouteError, request: httpx.Request | None = None) -> RouteError:
    """``error``, also an ``httpx.ConnectTimeout`` when its route timed out and an
    ``httpx.ConnectError`` otherwise; it stays the botsession error it is."""
    base = httpx.ConnectTimeout if _timed_out(error) else httpx.ConnectError
    flavoured = framework_error(error, base)
    if request is not None and isinstance(flavoured, httpx.RequestError):
        # httpx sets .request itself inside a client; a transport used alone needs it too.
        flavoured.request = request
    return flavoured


def _timed_out(error: RouteError) -> bool:
    if isinstance(error, ProxyHopError):
        return error.reason == "timeout"
    if isinstance(error, AllRoutesFailedError):
        return all(failure.reason == "timeout" for _number, failure in error.failures)
    return False  # pragma: no cover - RouteError has no other kinds


# --- translating requests and responses ----------------------------------------------------


def _url(url: httpx.URL) -> URL:
    """The URL to send to, exactly as httpx encoded it (without user info and fragment:
    httpx puts credentials in headers, and aiohttp would add them a second time)."""
    host = url.raw_host.decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    port = "" if url.port is None else f":{url.port}"
    return URL(f"{url.scheme}://{host}{port}{url.raw_path.decode('ascii')}", encoded=True)


def _headers(request: httpx.Request) -> list[tuple[str, str]]:
    # A streamed body without a length is chunked by aiohttp itself, which refuses to be told.
    streamed = _is_streamed(request)
    return [
        (_text(name), _text(value))
        for name, value in request.headers.raw
        if not (streamed and name.lower() == b"transfer-encoding")
    ]


def _text(raw: bytes) -> str:
    # aiohttp takes headers as text and sends them in UTF-8: UTF-8 bytes go out unchanged.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _body(request: httpx.Request) -> _RequestBody | None:
    write: float | None = request.extensions.get("timeout", {}).get("write")
    if _is_streamed(request):
        assert isinstance(request.stream, httpx.AsyncByteStream)
        return _RequestBody(request.stream, write)
    return _RequestBody(request.content, write) if request.content else None


def _is_streamed(request: httpx.Request) -> bool:
    try:
        request.content  # noqa: B018 - only asking whether it is in memory
    except httpx.RequestNotRead:
        return True
    return False


class _RequestBody(TimedPayload):
    """httpx's request body for aiohttp, each chunk within httpx's write timeout."""

    def __init__(self, content: bytes | httpx.AsyncByteStream, write_timeout: float | None) -> None:
        size = len(content) if isinstance(content, bytes) else None
        super().__init__(content, write_timeout=write_timeout, size=size)

    async def stream_chunks(self) -> AsyncIterator[bytes]:
        self._consumed = True  # a stream cannot be sent twice (aiohttp checks before a retry)
        async for chunk in self._content:
            yield chunk


class _ResponseBody(httpx.AsyncByteStream):
    """The body of an aiohttp response, as httpx reads it (chunks as they arrive)."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        request: httpx.Request,
        on_close: Callable[[], None],
    ) -> None:
        self._response = response
        self._request = request
        self._on_close: Callable[[], None] | None = on_close

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            with _httpx_exceptions(self._request):
                async for chunk in self._response.content.iter_any():
                    yield chunk
        except BaseException as error:
            redact_exception(error, token_secrets(str(self._request.url)))
            raise

    async def aclose(self) -> None:
        # The connection goes back to the pool if the body was read to its end; otherwise
        # it is closed, as it cannot be reused.
        self._response.release()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:  # once: httpx may close a response twice
            on_close()


# --- translating exceptions ----------------------------------------------------------------

_AIOHTTP_TO_HTTPX: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    # The first match wins, so subclasses come before their bases.
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),  # direct connections only
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (asyncio.TimeoutError, httpx.TimeoutException),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # direct connections only
    (aiohttp.ServerFingerprintMismatch, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # a response that is not HTTP
    (aiohttp.ClientConnectionResetError, httpx.WriteError),
    (aiohttp.ClientOSError, httpx.ReadError),
    (aiohttp.ClientConnectionError, httpx.NetworkError),
    (aiohttp.ClientError, httpx.TransportError),
    (ValueError, httpx.LocalProtocolError),  # aiohttp refuses to send a malformed header
)


@contextlib.contextmanager
def _httpx_exceptions(request: httpx.Request) -> Iterator[None]:
    """aiohttp's exceptions as httpx's; route errors pass (they are mapped by the caller)."""
    try:
        yield
    except RouteError:
        raise
    except (TimeoutError, aiohttp.ClientError, ValueError) as error:
        written = write_timeout_in(error)
        if written is not None:
            raise httpx.WriteTimeout(str(written), request=request) from error
        mapped = next(to for caught, to in _AIOHTTP_TO_HTTPX if isinstance(error, caught))
        raise mapped(_message(error), request=request) from error


def _message(error: BaseException) -> str:
    if isinstance(error, aiohttp.SocketTimeoutError):
        return "timed out waiting for the server's data (httpx's read timeout)"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "Server disconnected without sending a response."
    if isinstance(error, aiohttp.ClientResponseError):
        return f"the response is not valid HTTP: {error.message}"
    return str(error) or type(error).__name__


__all__ = [
    "RouteClient",
    "RouteTransport",
    "as_httpx_error",
    "build_httpx_client",
    "build_httpx_transport",
]


class _TokenSafeResponse(httpx.Response):
    """httpx's response, whose ``raise_for_status()`` error does not show the bot token: httpx
    writes the whole URL (``…/bot<id>:<secret>/getMe``) into its message. The error keeps its
    ``request`` and ``response``, whose URL is the real one, for code that asks for it."""

    def raise_for_status(self) -> _TokenSafeResponse:
        try:
            super().raise_for_status()
        except httpx.HTTPStatusError as error:
            redact_exception(error, token_secrets(str(self.request.url)))
            raise
        return self
