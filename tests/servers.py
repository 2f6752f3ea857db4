"""Real servers on loopback for the tests: a stand-in Bot API and in-process proxies.

They run on an event loop in a background thread, so one set serves every test whatever event
loop the test itself runs on, and a test can never deadlock its own servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import tiny_proxy
from aiohttp import web

from .helpers import BOT_USER, proxy_url

T = TypeVar("T")
LOOPBACK = "127.0.0.1"
TOKEN = "42:STAND-IN-TOKEN"


class BackgroundLoop:
    """An asyncio loop in a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="servers", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        self.run(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class ApiCall:
    method: str
    token: str
    form: dict[str, str]


@dataclass
class BotApiStandIn:
    """A local stand-in for api.telegram.org answering ``getMe`` (and a slow ``getUpdates``)."""

    background: BackgroundLoop
    tls: ssl.SSLContext | None = None
    calls: list[ApiCall] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    delay: float = 0.0
    close_connections: bool = False
    """Answer with ``Connection: close``, so every request needs a new connection."""
    port: int = 0
    _runner: web.AppRunner | None = None
    _release: asyncio.Event | None = None

    @property
    def base(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{LOOPBACK}:{self.port}"

    def reset(self) -> None:
        self.background.run(self._renew_release())  # wake handlers a previous test left waiting
        self.calls.clear()
        self.in_flight = self.max_in_flight = 0
        self.delay = 0.0
        self.close_connections = False

    async def _renew_release(self) -> None:
        if self._release is not None:
            self._release.set()
        self._release = asyncio.Event()

    def start(self) -> BotApiStandIn:
        async def start() -> None:
            app = web.Application()
            app.router.add_route("*", "/bot{token}/{method}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, LOOPBACK, 0, ssl_context=self.tls)
            await site.start()
            self.port = self._runner.addresses[0][1]

        self.background.run(start())
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self.background.run(self._renew_release())
            self.background.run(self._runner.cleanup())

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            form = {key: str(value) for key, value in (await request.post()).items()}
            method = request.match_info["method"]
            self.calls.append(ApiCall(method, request.match_info["token"], form))
            if self.delay and self._release is not None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._release.wait(), self.delay)
            if method == "sendMessage":
                # The request arrived; the answer is lost (the connection drops).
                assert request.transport is not None
                request.transport.abort()
            response = (
                _ok(BOT_USER)
                if method == "getMe"
                else _ok([])
                if method == "getUpdates"
                else web.json_response(
                    {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
                )
            )
            if self.close_connections:
                response.force_close()
            return response
        finally:
            self.in_flight -= 1


def _ok(result: Any) -> web.Response:
    return web.Response(
        text=json.dumps({"ok": True, "result": result}), content_type="application/json"
    )


class _Recording:
    """Mixin for tiny-proxy's proxies: remember the destination each client asked for."""

    destinations: list[tuple[str, int]]

    async def negotiate(self) -> tuple[str, int]:
        host, port = await super().negotiate()  # type: ignore[misc]
        self.destinations.append((host, port))
        return host, port


@dataclass
class InProcessProxy:
    """A tiny-proxy server (socks4/4a, socks5 or http CONNECT) that records destinations."""

    background: BackgroundLoop
    kind: str
    username: str | None = None
    password: str | None = None
    port: int = 0
    """0 picks a free port; a given port lets a test start a proxy where a route expects it."""
    destinations: list[tuple[str, int]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def url(self, scheme: str | None = None, *, credentials: bool = True) -> str:
        return proxy_url(
            scheme or self.kind,
            LOOPBACK,
            self.port,
            self.username,
            self.password,
            credentials=credentials,
        )

    def start(self) -> InProcessProxy:
        ready: asyncio.Future[int] = self.background.loop.create_future()

        async def serve() -> None:
            listener = await anyio.create_tcp_listener(local_host=LOOPBACK, local_port=self.port)
            ready.set_result(listener.extra(anyio.abc.SocketAttribute.local_port))  # noqa: S610
            async with listener:
                await listener.serve(self._handler().handle)

        async def start() -> int:
            self._task = asyncio.ensure_future(serve())
            return await asyncio.wait_for(asyncio.shield(ready), 5)

        self.port = self.background.run(start())
        return self

    def stop(self) -> None:
        async def stop() -> None:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

        self.background.run(stop())

    def _handler(self) -> Any:
        destinations = self.destinations
        if self.kind in ("socks4", "socks4a"):
            proxy_class = type("RecordingSocks4", (_Recording, tiny_proxy.Socks4Proxy), {})
            handler: Any = tiny_proxy.Socks4ProxyHandler(username=self.username)
        elif self.kind == "socks5":
            proxy_class = type("RecordingSocks5", (_Recording, tiny_proxy.Socks5Proxy), {})
            handler = tiny_proxy.Socks5ProxyHandler(self.username, self.password)
        else:
            proxy_class = type("RecordingHttp", (_Recording, tiny_proxy.HttpProxy), {})
            handler = tiny_proxy.HttpProxyHandler(self.username, self.password)
        proxy_class.destinations = destinations
        make: Callable[..., Any] = proxy_class
        credentials = {"username": self.username}
        if self.kind not in ("socks4", "socks4a"):
            credentials["password"] = self.password
        handler.create_proxy = lambda stream: make(stream=stream, **credentials)
        return handler


@dataclass
class SilentServer:
    """Accepts TCP connections and never answers (or, with ``hang_up``, closes them at once)."""

    background: BackgroundLoop
    hang_up: bool = False
    port: int = 0
    accepted: int = 0
    _server: asyncio.AbstractServer | None = None

    def start(self) -> SilentServer:
        async def start() -> None:
            async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                self.accepted += 1
                if not self.hang_up:
                    with contextlib.suppress(Exception):
                        await reader.read()  # until the client gives up
                writer.close()

            self._server = await asyncio.start_server(hang, LOOPBACK, 0)
            self.port = self._server.sockets[0].getsockname()[1]

        self.background.run(start())
        return self

    def stop(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        self.background.run(stop())


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])
