"""Real servers on loopback for the tests: a stand-in Bot API and in-process proxies.

They run on an event loop in a background thread, so one set serves every test whatever event
loop the test itself runs on, and a test can never deadlock its own servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import tiny_proxy
from aiohttp import web
from tiny_proxy._stream import SocketStream as TinyProxyStream

from .support import BOT_USER, LOOPBACK, proxy_url, reset

T = TypeVar("T")
SERVER_THREADS = "test-servers"
"""Prefix of the name of every thread the test servers run in."""


class BackgroundLoop:
    """An asyncio loop in a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        # Its threads are named, so a test can tell the servers' name lookups from the client's.
        self.loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix=SERVER_THREADS))
        self._thread = threading.Thread(
            target=self.loop.run_forever, name=SERVER_THREADS, daemon=True
        )
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


class Listener:
    """A listening socket on loopback, on the running loop, that gives each connection a
    protocol from ``factory``: what the test servers use instead of asyncio's Server.

    With asyncio's Server (Python 3.11), a connection accepted in the same loop iteration as
    ``close()`` is given a half-made transport that nobody closes (``Server._attach`` asserts
    once the server is closed), and the garbage collector reports it in whichever test runs
    later. This happens whenever a client connects just as a test ends and stops the server.
    Here every accepted socket goes to a task, and ``close()`` waits for those tasks: each
    connection has its protocol, or is closed.
    """

    TLS_HANDSHAKE_LIMIT = 5.0
    """With ``tls``, how long a connection may take over its handshake (close() waits)."""

    def __init__(
        self,
        sock: socket.socket,
        factory: Callable[[], asyncio.BaseProtocol],
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """Listen on ``sock`` (bound; it is made to listen here)."""
        sock.listen()
        sock.setblocking(False)
        self.port: int = sock.getsockname()[1]
        self._sock = sock
        self._factory = factory
        self._tls: dict[str, Any] = {}
        if tls is not None:
            self._tls = {"ssl": tls, "ssl_handshake_timeout": self.TLS_HANDSHAKE_LIMIT}
        self._loop = asyncio.get_running_loop()
        self._adopting: set[asyncio.Task[None]] = set()
        self._loop.add_reader(sock.fileno(), self._accept)

    @classmethod
    async def open(
        cls,
        factory: Callable[[], asyncio.BaseProtocol],
        port: int = 0,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> Listener:
        """Listen on 127.0.0.1 (``port`` 0: a free one), with TLS if ``tls`` is given."""
        return cls(socket.create_server((LOOPBACK, port)), factory, tls=tls)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # none waiting (BlockingIOError), or one that was gone already
                return
            conn.setblocking(False)
            adopting = self._loop.create_task(self._adopt(conn))
            self._adopting.add(adopting)
            adopting.add_done_callback(self._adopting.discard)

    async def _adopt(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn, **self._tls)
        except OSError:  # a failed TLS handshake included
            conn.close()

    async def close(self) -> None:
        """Stop accepting; the connections accepted so far get their protocol first."""
        if self._sock.fileno() != -1:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
        await asyncio.gather(*self._adopting)


async def stream_listener(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]], port: int = 0
) -> Listener:
    """A ``Listener`` that serves each connection as ``asyncio.start_server`` does: with
    ``handle(reader, writer)`` in a task of its own."""

    def protocol() -> asyncio.BaseProtocol:
        return asyncio.StreamReaderProtocol(asyncio.StreamReader(), handle)

    return await Listener.open(protocol, port)


async def app_listener(
    runner: web.AppRunner, sock: socket.socket | None = None, *, tls: ssl.SSLContext | None = None
) -> Listener:
    """Serve the application of ``runner`` (set up) on ``sock`` (bound), or on a free port of
    127.0.0.1: through a Listener, as aiohttp's own sites listen with asyncio's Server."""
    server = runner.server
    assert server is not None, "the runner is not set up"
    if sock is None:
        return await Listener.open(server, tls=tls)
    return Listener(sock, server, tls=tls)


async def stop_app(runner: web.AppRunner, listeners: list[Listener]) -> None:
    """Stop accepting, then close the connections and the application."""
    for listener in listeners:
        await listener.close()
    await runner.cleanup()


@dataclass
class BotApiStandIn:
    """A local stand-in for api.telegram.org.

    It answers ``getMe``, ``getUpdates`` (long polling: with a ``timeout`` it waits for an
    update, a ``release`` or the timeout), ``deleteWebhook``, ``sendDocument`` (a multipart
    upload, recorded in ``uploads``), ``getFile`` and the download of an uploaded file.
    ``sendMessage`` arrives but its answer is lost: the connection drops on purpose.
    """

    @dataclass
    class Upload:
        """A file part of a multipart request, as the server received it."""

        method: str
        field: str
        filename: str | None
        content_type: str
        content: bytes

    background: BackgroundLoop
    tls: ssl.SSLContext | None = None
    calls: list[ApiCall] = field(default_factory=list)
    uploads: list[BotApiStandIn.Upload] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)
    """The User-Agent header of each call, in the order of ``calls``."""
    updates: list[dict[str, Any]] = field(default_factory=list)
    """Updates ``getUpdates`` answers until a later call confirms them with its ``offset``."""
    in_flight: int = 0
    max_in_flight: int = 0
    delay: float = 0.0
    close_connections: bool = False
    """Answer with ``Connection: close``, so every request needs a new connection."""
    hold_bodies: bool = False
    """Leave request bodies unread until ``release``: a large upload stalls once buffers fill."""
    port: int = 0
    dual_stack: bool = False
    """Listen on ::1 as well as 127.0.0.1 (same port), for clients that reach it as localhost."""
    _runner: web.AppRunner | None = None
    _listeners: list[Listener] = field(default_factory=list)
    _release: asyncio.Event | None = None
    _arrived: asyncio.Event | None = None
    _files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    """Uploaded files by file_id: their file_path and content."""

    HOLD_LIMIT = 60.0
    """``hold_bodies`` holds a body at most this long, whatever happens."""

    @property
    def base(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{LOOPBACK}:{self.port}"

    def reset(self) -> None:
        self.background.run(self._renew_release())  # wake handlers a previous test left waiting
        self.calls.clear()
        self.uploads.clear()
        self.user_agents.clear()
        self.updates.clear()
        self._files.clear()
        self.in_flight = self.max_in_flight = 0
        self.delay = 0.0
        self.close_connections = False
        self.hold_bodies = False

    def release(self) -> None:
        """Wake every handler waiting (on ``delay``, a long poll or a held body) now."""
        self.background.run(self._renew_release())

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for ``getUpdates``; a long poll waiting now answers it at once."""

        async def push() -> None:
            self.updates.append(update)
            if self._arrived is not None:
                self._arrived.set()
            self._arrived = asyncio.Event()

        self.background.run(push())

    async def _renew_release(self) -> None:
        if self._release is not None:
            self._release.set()
        self._release = asyncio.Event()

    def start(self) -> BotApiStandIn:
        async def start() -> None:
            self._arrived = asyncio.Event()
            # Uploads beyond the Bot API's 50 MB (aiohttp's default allows 1 MiB): a test may
            # send more than the socket buffers hold, to make an upload stall.
            app = web.Application(client_max_size=128 * 1024 * 1024)
            app.router.add_route("*", "/bot{token}/{method}", self._handle)
            app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._download)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            v4 = await app_listener(self._runner, tls=self.tls)
            self._listeners = [v4]
            self.port = v4.port
            if self.dual_stack and socket.has_ipv6:
                v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                try:
                    v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    v6.bind(("::1", self.port))
                except OSError:  # no IPv6 loopback here: IPv4 is enough
                    v6.close()
                else:
                    self._listeners.append(await app_listener(self._runner, v6, tls=self.tls))

        self.background.run(start())
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self.background.run(self._renew_release())
            self.background.run(stop_app(self._runner, self._listeners))

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            method = request.match_info["method"]
            if self.hold_bodies:
                await self._until_released(self.HOLD_LIMIT)
                if request.transport is None or request.transport.is_closing():
                    return web.Response(status=499)  # the client gave up: nothing to read
            form = await self._read_form(request, method)
            self.calls.append(ApiCall(method, request.match_info["token"], form))
            self.user_agents.append(request.headers.get("User-Agent", ""))
            if self.delay:
                await self._until_released(self.delay)
            if method == "sendMessage":
                # The request arrived; the answer is lost (the connection drops).
                assert request.transport is not None
                request.transport.abort()
            if method == "getUpdates":
                await self._long_poll(form)
            response = self._answer(method, form)
            if self.close_connections:
                response.force_close()
            return response
        finally:
            self.in_flight -= 1

    async def _read_form(self, request: web.Request, method: str) -> dict[str, str]:
        """The form fields as text; file parts go to ``uploads`` (and are not in the form)."""
        from aiohttp import BodyPartReader

        if not request.content_type.startswith("multipart/"):
            return {key: str(value) for key, value in (await request.post()).items()}
        # Parts are read into memory: request.post() spools files to temporary files that it
        # leaves open when the client goes away in the middle of an upload.
        form: dict[str, str] = {}
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader):
                continue
            content = await part.read()
            name = part.name or ""
            if part.filename is None:
                form[name] = content.decode()
            else:
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                upload = self.Upload(method, name, part.filename, content_type, bytes(content))
                self.uploads.append(upload)
        return form

    async def _until_released(self, limit: float) -> None:
        if self._release is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._release.wait(), limit)

    async def _long_poll(self, form: dict[str, str]) -> None:
        """Drop the updates ``offset`` confirms; with none left, wait as ``timeout`` says."""
        offset = int(form.get("offset") or 0)
        self.updates[:] = [update for update in self.updates if update["update_id"] >= offset]
        timeout = float(form.get("timeout") or 0)
        if self.updates or timeout <= 0 or self._release is None or self._arrived is None:
            return
        waiters = [
            asyncio.ensure_future(self._release.wait()),
            asyncio.ensure_future(self._arrived.wait()),
        ]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _answer(self, method: str, form: dict[str, str]) -> web.Response:
        if method == "getMe":
            return _ok(BOT_USER)
        if method == "getUpdates":
            return _ok(list(self.updates))
        if method == "deleteWebhook":
            return _ok(True)
        if method == "sendDocument":
            return self._document_sent(form)
        if method == "getFile" and form.get("file_id") in self._files:
            path, content = self._files[form["file_id"]]
            return _ok(
                {
                    "file_id": form["file_id"],
                    "file_unique_id": f"unique-{form['file_id']}",
                    "file_size": len(content),
                    "file_path": path,
                }
            )
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    def _document_sent(self, form: dict[str, str]) -> web.Response:
        import time

        uploaded = [u for u in self.uploads if u.method == "sendDocument" and u.field == "document"]
        if not uploaded or "chat_id" not in form:
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request: no document"},
                status=400,
            )
        upload = uploaded[-1]
        file_id = f"document-{len(self._files) + 1}"
        self._files[file_id] = (f"documents/{upload.filename}", upload.content)
        document = {
            "file_id": file_id,
            "file_unique_id": f"unique-{file_id}",
            "file_name": upload.filename,
            "mime_type": upload.content_type,
            "file_size": len(upload.content),
        }
        chat = {"id": int(form["chat_id"]), "type": "private"}
        message = {
            "message_id": len(self._files),
            "date": int(time.time()),
            "chat": chat,
            "document": document,
        }
        return _ok(message)

    async def _download(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        self.calls.append(ApiCall(f"file/{path}", request.match_info["token"], {}))
        self.user_agents.append(request.headers.get("User-Agent", ""))
        for stored_path, content in self._files.values():
            if stored_path == path:
                return web.Response(body=content, content_type="application/octet-stream")
        raise web.HTTPNotFound


def _ok(result: Any) -> web.Response:
    return web.Response(
        text=json.dumps({"ok": True, "result": result}), content_type="application/json"
    )


class _Recording:
    """Mixin for tiny-proxy's proxies: remember the destination each client asked for, and
    close the connection to it when the client is gone before the success reply.

    tiny-proxy's own ``connect_to_remote`` drops that connection unclosed when sending the reply
    fails (the client reset, as botsession does when it gives up) or is cancelled (``stop()``);
    the garbage collector then warns about it in whichever test happens to run.
    """

    destinations: list[tuple[str, int]]
    stream: Any
    """tiny-proxy's stream to the client."""
    source: str | None = None
    """The address its connections to the destination leave from (None: the system's)."""

    async def negotiate(self) -> tuple[str, int]:
        host, port = await super().negotiate()  # type: ignore[misc]
        self.destinations.append((host, port))
        return host, port

    async def connect_to_remote(self) -> Any:
        host, port = await self.negotiate()
        try:
            connected = await anyio.connect_tcp(host, port, local_host=self.source)
        except OSError as error:
            await self.refuse()
            raise ConnectionRefusedError(f"cannot connect to {host}:{port}") from error
        remote = TinyProxyStream(connected)
        try:
            await self.grant(remote)
        except BaseException:
            await remote.aclose()
            raise
        return remote

    async def grant(self, remote: Any) -> None:
        raise NotImplementedError

    async def refuse(self) -> None:
        raise NotImplementedError


class _RecordingSocks4(_Recording, tiny_proxy.Socks4Proxy):
    async def grant(self, remote: Any) -> None:
        await self.respond(0x5A)  # request granted

    async def refuse(self) -> None:
        await self.respond(0x5C)  # what tiny-proxy answers when it cannot connect


class _RecordingSocks5(_Recording, tiny_proxy.Socks5Proxy):
    async def grant(self, remote: Any) -> None:
        host, port = remote.getsockname()[:2]
        bound = ipaddress.ip_address(host)
        kind = 0x01 if bound.version == 4 else 0x04
        await self.stream.send(bytes([5, 0, 0, kind]) + bound.packed + port.to_bytes(2, "big"))

    async def refuse(self) -> None:
        await self.stream.send(bytes([5, 5, 0, 0, 0, 0]))  # connection refused, as tiny-proxy


class _RecordingHttp(_Recording, tiny_proxy.HttpProxy):
    async def grant(self, remote: Any) -> None:
        await self.respond(200, "Connection established")

    async def refuse(self) -> None:
        await self.respond(502, "Bad Gateway", raise_exc=False)


@dataclass
class InProcessProxy:
    """A tiny-proxy server (socks4/4a, socks5 or http CONNECT) that records destinations."""

    background: BackgroundLoop
    kind: str
    username: str | None = None
    password: str | None = None
    port: int = 0
    """0 picks a free port; a given port lets a test start a proxy where a route expects it."""
    host: str = LOOPBACK
    """Where it listens; ``localhost`` listens on every address that name has, on one port."""
    destinations: list[tuple[str, int]] = field(default_factory=list)
    source: str | None = None
    """Where its connections to the destination leave from (``127.0.0.2``, …: a server on
    127.0.0.1 then tells by the peer address which proxy a request came through)."""
    _task: asyncio.Task[None] | None = None
    _clients: set[anyio.abc.SocketStream] = field(default_factory=set)

    def url(self, scheme: str | None = None, *, credentials: bool = True) -> str:
        return proxy_url(
            scheme or self.kind,
            LOOPBACK,
            self.port,
            self.username,
            self.password,
            credentials=credentials,
        )

    @property
    def serving(self) -> int:
        """Client connections not yet over."""
        return len(self._clients)

    def start(self) -> InProcessProxy:
        ready: asyncio.Future[int] = self.background.loop.create_future()

        async def serve() -> None:
            listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
            ready.set_result(listener.extra(anyio.abc.SocketAttribute.local_port))  # noqa: S610
            handler = self._handler()

            async def handle(stream: anyio.abc.SocketStream) -> None:
                try:
                    await handler.handle(stream)
                finally:
                    self._clients.discard(stream)
                    await stream.aclose()  # it aborts the transport before its first await

            # Every accepted stream is kept until its handler has closed it, and stop() closes
            # what is left: tiny-proxy closes a client's stream only after an await, and a
            # handler cancelled before it ran closes nothing, so a stop() at the wrong moment
            # would leave transports to the garbage collector (a ResourceWarning in whichever
            # test runs then).
            async def accept(one: Any, handlers: anyio.abc.TaskGroup) -> None:
                while True:
                    stream = await one.accept()
                    self._clients.add(stream)
                    handlers.start_soon(handle, stream)

            async with listener, anyio.create_task_group() as handlers:
                for one in listener.listeners:  # "localhost": one for each address
                    handlers.start_soon(accept, one, handlers)

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
            for stream in list(self._clients):
                await stream.aclose()
            self._clients.clear()

        self.background.run(stop())

    def _handler(self) -> Any:
        handler: Any
        proxy_class: type[_Recording]
        if self.kind in ("socks4", "socks4a"):
            proxy_class = _RecordingSocks4
            handler = tiny_proxy.Socks4ProxyHandler(username=self.username)
        elif self.kind == "socks5":
            proxy_class = _RecordingSocks5
            handler = tiny_proxy.Socks5ProxyHandler(self.username, self.password)
        else:
            proxy_class = _RecordingHttp
            handler = tiny_proxy.HttpProxyHandler(self.username, self.password)
        make: Callable[..., Any] = proxy_class
        credentials = {"username": self.username}
        if self.kind not in ("socks4", "socks4a"):
            credentials["password"] = self.password

        def create_proxy(stream: Any) -> Any:
            proxy = make(stream=stream, **credentials)
            proxy.destinations = self.destinations
            proxy.source = self.source
            return proxy

        handler.create_proxy = create_proxy
        return handler


S = TypeVar("S", bound="StreamServer")


@dataclass
class StreamServer:
    """An asyncio server on a loopback port of the background loop; ``handle`` serves each
    connection (a subclass says how)."""

    background: BackgroundLoop
    port: int = 0
    _listener: Listener | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def start(self: S) -> S:
        async def start() -> None:
            self._listener = await stream_listener(self.handle)
            self.port = self._listener.port

        self.background.run(start())
        return self

    def stop(self) -> None:
        async def stop() -> None:
            if self._listener is not None:
                await self._listener.close()

        self.background.run(stop())


@dataclass
class SilentServer(StreamServer):
    """Accepts TCP connections and never answers (or, with ``hang_up``, closes them at once)."""

    hang_up: bool = False
    accepted: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if not self.hang_up:
            with contextlib.suppress(Exception):
                await reader.read()  # until the client gives up
        writer.close()


@dataclass
class MisbehavingApi(StreamServer):
    """A Bot API server that reads each request's head and then fails the way ``mode`` says:
    ``close`` (FIN without an answer), ``reset`` (RST), ``garbage`` (an answer that is not
    HTTP), ``truncated`` (a body shorter than its Content-Length, then FIN), ``silent`` (no
    answer until the client leaves), ``html`` (a 502 with an HTML page, as a proxy's error
    page). With ``tls_ca`` it speaks TLS with a certificate from that CA. ``requests`` counts
    the request heads read."""

    mode: str = "close"
    tls_ca: Any = None
    requests: int = 0

    SILENT_LIMIT = 60.0
    """``silent`` waits at most this long for the client to leave."""

    @property
    def base(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://{LOOPBACK}:{self.port}"

    def start(self) -> MisbehavingApi:
        async def start() -> None:
            tls = None
            if self.tls_ca is not None:
                tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                self.tls_ca.issue_cert(LOOPBACK).configure_cert(tls)

            def protocol() -> asyncio.BaseProtocol:
                return asyncio.StreamReaderProtocol(asyncio.StreamReader(), self.handle)

            self._listener = await Listener.open(protocol, tls=tls)
            self.port = self._listener.port

        self.background.run(start())
        return self

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.SILENT_LIMIT)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        self.requests += 1
        mode = self.mode
        if mode == "reset":
            reset(writer.transport)
            return
        if mode == "garbage":
            writer.write(b"SSH-2.0-OpenSSH_9.2p1\r\n")
        elif mode == "truncated":
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"ok": true, "res'
            )
        elif mode == "html":
            page = b"<html><body>502 Bad Gateway</body></html>"
            writer.write(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(page), page)
            )
        elif mode == "silent":
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader.read(), self.SILENT_LIMIT)
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()
