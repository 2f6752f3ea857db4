"""httpx through botsession's routes: real ``httpx.AsyncClient`` calls through in-process proxies.

The stand-in Bot API answers ``getMe``; a small local server (``EchoServer``) shows what
arrives on the wire and serves large, compressed and redirecting responses; a ``RawServer``
answers broken HTTP. Every request goes through a real proxy unless the test says otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import gzip
import json
import logging
import pickle
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx
import pytest
from aiohttp import web

from botsession import AllRoutesFailedError, ConfigError, ProxyHopError, RouteError
from botsession.httpx_transport import RouteTransport, build_httpx_client, build_httpx_transport

from .conftest import ProxyFactory
from .faultproxy import Fault, FaultProxy, FaultProxyFactory, Protocol, Step
from .servers import (
    BackgroundLoop,
    BotApiStandIn,
    Listener,
    SilentServer,
    StreamServer,
    app_listener,
    stop_app,
)
from .support import (
    BOT_USER,
    LATE,
    LOOPBACK,
    PATIENT,
    SENTINEL,
    TOKEN,
    free_port,
    leaks,
    open_fds,
    settle,
    traceback_texts,
)

CONNECT_TIMEOUT = 1.0
"""connect_timeout of the clients that meet a silent proxy (seconds)."""


def get_me_url(api: BotApiStandIn) -> str:
    return f"{api.base}/bot{TOKEN}/getMe"


def client_for(api: BotApiStandIn, proxy: Any, **settings: Any) -> httpx.AsyncClient:
    """``build_httpx_client`` for the stand-in API through ``proxy``."""
    return build_httpx_client(proxy=proxy, api={"base": api.base}, **settings)


async def get_me(client: httpx.AsyncClient, api: BotApiStandIn) -> dict[str, Any]:
    """``POST getMe`` with ``client``, returning the user from a 200 answer."""
    response = await client.post(get_me_url(api))
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body["ok"] is True
    return dict(body["result"])


# --- local servers ---------------------------------------------------------------------------


@dataclass
class EchoServer:
    """A real HTTP server: ``/echo/…`` answers with what it received, ``/big`` with many
    bytes, ``/gzip`` with a compressed body, ``/redirect`` with a redirect."""

    background: BackgroundLoop
    port: int = 0
    big_size: int = 4 * 1024 * 1024
    _runner: web.AppRunner | None = None
    _listener: Listener | None = None

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> EchoServer:
        async def start() -> None:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/echo/{tail:.*}", self._echo)
            app.router.add_get("/big", self._big)
            app.router.add_get("/gzip", self._gzip)
            app.router.add_get("/redirect", self._redirect)
            app.router.add_get("/set-cookie", self._set_cookie)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            self._listener = await app_listener(self._runner)
            self.port = self._listener.port

        self.background.run(start())
        return self

    def stop(self) -> None:
        if self._runner is not None and self._listener is not None:
            self.background.run(stop_app(self._runner, [self._listener]))

    async def _echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        seen = {
            "method": request.method,
            "target": request.raw_path,
            "headers": [[name.decode(), value.decode()] for name, value in request.raw_headers],
            "body_length": len(body),
        }
        return web.json_response(seen)

    async def _big(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = self.big_size
        await response.prepare(request)
        piece = b"x" * 65536
        for _ in range(self.big_size // len(piece)):
            await response.write(piece)
        return response

    async def _gzip(self, request: web.Request) -> web.Response:
        body = gzip.compress(json.dumps({"compressed": True}).encode())
        return web.Response(
            body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    async def _set_cookie(self, request: web.Request) -> web.Response:
        response = web.Response(text="set")
        response.set_cookie("flavour", "oat")
        return response

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/echo/redirected")


@dataclass
class RawServer(StreamServer):
    """Reads a request head, answers ``reply`` (any bytes at all) and closes the connection;
    with no reply, reads nothing more and keeps the connection open."""

    reply: bytes | None = None

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            if self.reply is None:
                await asyncio.sleep(30)  # until the client gives up (or the server stops)
            writer.write(self.reply or b"")
            await writer.drain()
        writer.close()


@pytest.fixture
def echo(background: BackgroundLoop) -> Iterator[EchoServer]:
    server = EchoServer(background).start()
    yield server
    server.stop()


@pytest.fixture
def raw_server(background: BackgroundLoop) -> Iterator[Callable[[bytes | None], RawServer]]:
    started: list[RawServer] = []

    def start(reply: bytes | None) -> RawServer:
        server = RawServer(background, reply=reply).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# --- every route feature -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["socks4", "socks4a", "socks5", "http"])
async def test_get_me_through_each_protocol(
    kind: str, bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A real httpx client gets the user through a proxy of each protocol, which carries it."""
    server = proxy(kind)
    async with client_for(bot_api, server.url()) as client:
        assert await get_me(client, bot_api) == BOT_USER
    assert server.destinations == [(LOOPBACK, bot_api.port)]
    assert [call.method for call in bot_api.calls] == ["getMe"]


async def test_the_client_takes_bot_api_urls_relative_to_api_base(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """build_httpx_client's base URL is api.base: ``client.post(f"/bot{token}/getMe")`` reaches
    the Bot API through the route, below a path prefix of api.base when it has one."""
    server = proxy("socks5")
    async with client_for(bot_api, server.url()) as client:
        assert client.base_url == httpx.URL(bot_api.base)
        response = await client.post(f"/bot{TOKEN}/getMe")
        assert response.json()["result"] == BOT_USER
    assert server.destinations == [(LOOPBACK, bot_api.port)]
    assert [call.token for call in bot_api.calls] == [TOKEN]
    async with build_httpx_client(api={"base": f"{bot_api.base}/prefix"}) as prefixed:
        request = prefixed.build_request("POST", f"/bot{TOKEN}/getMe")
    assert str(request.url) == f"{bot_api.base}/prefix/bot{TOKEN}/getMe"


async def test_chain_uses_every_hop_in_order(bot_api: BotApiStandIn, proxy: ProxyFactory) -> None:
    """A socks5 → http → socks4a chain reaches the API through each hop, in order."""
    hops = [proxy("socks5"), proxy("http"), proxy("socks4")]
    route = [hops[0].url(), hops[1].url(), hops[2].url("socks4a")]
    async with client_for(bot_api, route) as client:
        assert (await get_me(client, bot_api))["id"] == 42
    assert [hop.destinations for hop in hops] == [
        [(LOOPBACK, hops[1].port)],
        [(LOOPBACK, hops[2].port)],
        [(LOOPBACK, bot_api.port)],
    ]


@pytest.mark.parametrize("kind", ["socks5", "http"])
async def test_credentials_are_accepted_by_the_proxy(
    kind: str, bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A proxy that requires a user name and password lets the request through with them."""
    server = proxy(kind, "alice", SENTINEL)
    async with client_for(bot_api, server.url()) as client:
        await get_me(client, bot_api)
    assert server.destinations == [(LOOPBACK, bot_api.port)]


@pytest.mark.parametrize("kind", ["socks5", "http"])
async def test_wrong_password_is_a_connect_error_naming_the_hop(
    kind: str, bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A rejected password at hop 2 is an httpx.ConnectError naming hop 2, showing no password."""
    first, second = proxy("socks5"), proxy(kind, "bob", "the-right-one")
    wrong = {"url": second.url(credentials=False), "username": "bob", "password": SENTINEL}
    async with client_for(bot_api, [first.url(), wrong]) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await get_me(client, bot_api)
    error = caught.value
    assert isinstance(error, ProxyHopError)
    assert (error.hop_number, error.hop_count, error.reason) == (2, 2, "auth")
    assert str(error).startswith(f"proxy hop 2 of 2 ({kind}://bob:***@127.0.0.1:{second.port}): ")
    assert "rejected the credentials" in str(error)
    assert SENTINEL not in str(error) + repr(error)
    assert bot_api.calls == []


async def test_dead_primary_falls_back_and_sends_once(
    bot_api: BotApiStandIn, proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused primary route sends the requests through the fallback, which stays active."""
    dead = free_port()
    backup = proxy("socks5", "u", SENTINEL)
    async with client_for(bot_api, f"socks5://127.0.0.1:{dead}", fallback=[backup.url()]) as client:
        assert await get_me(client, bot_api) == BOT_USER
        await get_me(client, bot_api)  # the active route sticks
    assert len(bot_api.calls) == 2
    assert len(backup.destinations) == 1  # one connection, kept alive for the second request
    assert "switched to route fallback[0]" in caplog.text
    assert SENTINEL not in caplog.text


async def test_first_request_through_the_fallback_arrives_exactly_once(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """The request that found the primary dead reaches the API once, through the fallback."""
    backup = proxy("http")
    async with client_for(
        bot_api, f"socks5://127.0.0.1:{free_port()}", fallback=[backup.url()]
    ) as client:
        await get_me(client, bot_api)
    assert len(bot_api.calls) == 1
    assert backup.destinations == [(LOOPBACK, bot_api.port)]


async def test_dead_first_hop_is_named(bot_api: BotApiStandIn, proxy: ProxyFactory) -> None:
    """Nothing listening at hop 1 is a ConnectError naming hop 1 as refused."""
    dead = free_port()
    async with client_for(bot_api, [f"socks5://127.0.0.1:{dead}", proxy("http").url()]) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await get_me(client, bot_api)
    assert not isinstance(caught.value, httpx.ConnectTimeout)
    assert str(caught.value) == (
        f"proxy hop 1 of 2 (socks5://127.0.0.1:{dead}): connection refused; "
        "is the proxy running and listening there?"
    )
    assert isinstance(caught.value, ProxyHopError)
    assert caught.value.request.url == get_me_url(bot_api)


async def test_dead_second_hop_is_reported_by_the_first(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A dead hop 2 is reported by hop 1, which could not reach hop 2's address."""
    dead = free_port()
    async with client_for(bot_api, [proxy("socks5").url(), f"http://127.0.0.1:{dead}"]) as client:
        with pytest.raises(httpx.ConnectError, match=r"^proxy hop 1 of 2 \(socks5://") as caught:
            await get_me(client, bot_api)
    assert f"refused to connect to 127.0.0.1:{dead} (hop 2)" in str(caught.value)
    assert isinstance(caught.value, ProxyHopError)
    assert caught.value.reason == "rejected"


async def test_silent_hop_is_a_connect_timeout_within_connect_timeout(
    bot_api: BotApiStandIn, proxy: ProxyFactory, silent_server: SilentServer
) -> None:
    """A hop that never answers is an httpx.ConnectTimeout naming it, after connect_timeout."""
    route = [proxy("socks5").url(), f"http://127.0.0.1:{silent_server.port}"]
    async with client_for(bot_api, route, connect_timeout=CONNECT_TIMEOUT) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ConnectTimeout) as caught:
            await get_me(client, bot_api)
        elapsed = time.monotonic() - started
    assert isinstance(caught.value, ProxyHopError)
    assert (caught.value.hop_number, caught.value.reason) == (2, "timeout")
    assert "no answer within the 1 s connect timeout" in str(caught.value)
    assert CONNECT_TIMEOUT - 0.1 < elapsed < CONNECT_TIMEOUT + LATE
    assert silent_server.accepted == 1


async def test_httpx_connect_timeout_does_not_cut_the_fallback_short(
    bot_api: BotApiStandIn, proxy: ProxyFactory, silent_server: SilentServer
) -> None:
    """A silent primary uses up its connect_timeout, then the fallback serves, even when
    httpx's own connect timeout is shorter than that."""
    backup = proxy("socks5")
    route = f"socks5://127.0.0.1:{silent_server.port}"
    async with client_for(
        bot_api, route, fallback=[backup.url()], connect_timeout=0.5, fallback_hedge_after=None
    ) as client:
        started = time.monotonic()
        response = await client.post(get_me_url(bot_api), timeout=httpx.Timeout(5, connect=0.1))
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert 0.4 < elapsed < 0.5 + LATE
    assert backup.destinations == [(LOOPBACK, bot_api.port)]


async def test_every_route_silent_is_a_connect_timeout_listing_them(
    bot_api: BotApiStandIn, silent_server: SilentServer
) -> None:
    """When every route times out the error is an httpx.ConnectTimeout and AllRoutesFailedError."""
    route = f"socks5://127.0.0.1:{silent_server.port}"
    async with client_for(bot_api, route, fallback=[route], connect_timeout=0.3) as client:
        with pytest.raises(httpx.ConnectTimeout) as caught:
            await get_me(client, bot_api)
    assert isinstance(caught.value, AllRoutesFailedError)
    assert [error.reason for _number, error in caught.value.failures] == ["timeout", "timeout"]
    assert str(caught.value).startswith("all 2 proxy routes failed: route proxy (socks5://")


async def test_routes_failing_differently_are_a_connect_error(
    bot_api: BotApiStandIn, silent_server: SilentServer
) -> None:
    """A refused route and a silent one make an httpx.ConnectError (not a timeout) listing both."""
    dead, silent = free_port(), silent_server.port
    async with client_for(
        bot_api,
        f"http://127.0.0.1:{dead}",
        fallback=[f"http://127.0.0.1:{silent}"],
        connect_timeout=0.3,
    ) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await get_me(client, bot_api)
    assert not isinstance(caught.value, httpx.ConnectTimeout)
    assert isinstance(caught.value, AllRoutesFailedError)
    assert [error.reason for _n, error in caught.value.failures] == ["refused", "timeout"]


async def test_limit_is_honoured(bot_api: BotApiStandIn, proxy: ProxyFactory) -> None:
    """limit=2 lets exactly two of six simultaneous requests reach the server at a time."""
    bot_api.delay = 0.3
    server = proxy("socks5")
    async with client_for(bot_api, server.url(), limit=2) as client:
        url = f"{bot_api.base}/bot{TOKEN}/getUpdates"
        responses = await asyncio.gather(*(client.post(url) for _ in range(6)))
    assert [response.status_code for response in responses] == [200] * 6
    assert (bot_api.max_in_flight, len(bot_api.calls)) == (2, 6)
    assert len(server.destinations) == 2


async def test_pool_timeout_when_every_connection_is_busy(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """With limit=1 and the connection busy, httpx's pool timeout raises httpx.PoolTimeout."""
    bot_api.delay = PATIENT  # busy until cancelled
    async with client_for(bot_api, proxy("socks5").url(), limit=1) as client:
        slow = asyncio.ensure_future(client.post(f"{bot_api.base}/bot{TOKEN}/getUpdates"))
        while bot_api.in_flight < 1:  # noqa: ASYNC110 - the server runs in another thread
            await asyncio.sleep(0.01)
        with pytest.raises(httpx.PoolTimeout):
            await client.post(get_me_url(bot_api), timeout=httpx.Timeout(5, pool=0.2))
        slow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await slow
    assert [call.method for call in bot_api.calls] == ["getUpdates"]


# --- faulty proxies ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """A proxy spoiling one handshake step, at hop 1 or 2 of a two-hop chain."""

    protocol: Protocol
    step: Step
    fault: Fault
    position: Literal[1, 2]
    fallback: bool = False

    def __str__(self) -> str:
        route = "-fallback" if self.fallback else ""
        return f"{self.protocol}:{self.step}-{self.fault}-hop{self.position}{route}"


# One protocol step per fault (the fault matrix covers all of them under aiohttp): the point
# here is that each kind of failure comes out of httpx as the right exception.
STAGES: dict[Fault, tuple[Protocol, Step]] = {
    "close": ("socks5", "greeting"),
    "reset": ("socks5", "reply"),
    "garbage": ("http", "reply"),
    "truncated": ("socks5", "auth"),
    "split": ("http", "reply"),
}
REASONS: dict[Fault, str] = {
    "close": "closed",
    "reset": "reset",
    "garbage": "protocol",
    "truncated": "closed",
}
FAILING = [Cell(*STAGES[fault], fault, position) for fault in REASONS for position in (1, 2)]
SERVED = [
    *(Cell(*STAGES["split"], "split", position) for position in (1, 2)),
    Cell(*STAGES["reset"], "reset", 2, fallback=True),
    Cell(*STAGES["garbage"], "garbage", 1, fallback=True),
]


def chain_settings(
    cell: Cell, bot_api: BotApiStandIn, fault_proxy: FaultProxyFactory, proxy: ProxyFactory
) -> tuple[dict[str, Any], list[FaultProxy], Any]:
    faulty = fault_proxy(cell.protocol, cell.step, cell.fault)
    good = fault_proxy("socks5")
    hops = [faulty, good] if cell.position == 1 else [good, faulty]
    settings: dict[str, Any] = {
        "proxy": [hop.url() for hop in hops],
        "connect_timeout": PATIENT,  # a fault is reported at once, not at the timeout
        "api": {"base": bot_api.base},
    }
    backup = proxy("http") if cell.fallback else None
    if backup is not None:
        settings["fallback"] = [backup.url()]
    return settings, hops, backup


@pytest.mark.parametrize("cell", FAILING, ids=str)
async def test_faulty_hop_is_a_connect_error_naming_it(
    cell: Cell, bot_api: BotApiStandIn, fault_proxy: FaultProxyFactory, proxy: ProxyFactory
) -> None:
    """A handshake broken at hop 1 or 2 is an httpx.ConnectError naming that hop, at once."""
    settings, _hops, _backup = chain_settings(cell, bot_api, fault_proxy, proxy)
    async with build_httpx_client(**settings) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ConnectError) as caught:
            await get_me(client, bot_api)
        elapsed = time.monotonic() - started
    error = caught.value
    assert isinstance(error, ProxyHopError), f"{type(error).__name__}: {error}"
    assert (error.hop_number, error.hop_count, error.reason) == (
        cell.position,
        2,
        REASONS[cell.fault],
    ), str(error)
    assert str(error).startswith(f"proxy hop {cell.position} of 2")
    assert bot_api.calls == []
    assert elapsed < PATIENT / 2, f"{cell}: {elapsed:.2f} s"


@pytest.mark.parametrize("cell", SERVED, ids=str)
async def test_request_is_served_despite_the_fault(
    cell: Cell, bot_api: BotApiStandIn, fault_proxy: FaultProxyFactory, proxy: ProxyFactory
) -> None:
    """A reply in small pieces works through the chain; a broken one goes to the fallback."""
    settings, hops, backup = chain_settings(cell, bot_api, fault_proxy, proxy)
    async with build_httpx_client(**settings) as client:
        assert await get_me(client, bot_api) == BOT_USER
    assert len(bot_api.calls) == 1
    if backup is None:
        assert hops[0].destinations == [(LOOPBACK, hops[1].port)]
        assert hops[1].destinations == [(LOOPBACK, bot_api.port)]
    else:
        assert backup.destinations == [(LOOPBACK, bot_api.port)]


# --- TLS ------------------------------------------------------------------------------------


async def test_https_through_a_route_verified_with_ca_file(
    tls_bot_api: BotApiStandIn, proxy: ProxyFactory, ca_file: Path
) -> None:
    """HTTPS to the server through a socks5 proxy is verified against ssl.ca_file."""
    server = proxy("socks5")
    async with client_for(tls_bot_api, server.url(), ssl={"ca_file": ca_file}) as client:
        response = await client.post(get_me_url(tls_bot_api))
    assert response.json()["result"] == BOT_USER
    assert server.destinations == [(LOOPBACK, tls_bot_api.port)]


async def test_unknown_certificate_is_a_tls_failure_naming_the_hop(
    tls_bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """Without ca_file the test CA is unknown: a ConnectError of reason tls, nothing sent."""
    server = proxy("http")
    async with client_for(tls_bot_api, server.url()) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await get_me(client, tls_bot_api)
    assert isinstance(caught.value, ProxyHopError)
    assert caught.value.reason == "tls"
    assert str(caught.value).startswith(f"proxy hop 1 of 1 (http://127.0.0.1:{server.port}): ")
    assert "certificate verify failed" in str(caught.value)
    assert tls_bot_api.calls == []


async def test_tls_failure_moves_on_to_the_fallback_route(
    tls_bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """TLS is part of each route's connect phase: a failed handshake tries the next route."""
    first, second = proxy("socks5"), proxy("http")
    async with client_for(tls_bot_api, first.url(), fallback=[second.url()]) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await get_me(client, tls_bot_api)
    assert isinstance(caught.value, AllRoutesFailedError)
    assert [error.reason for _n, error in caught.value.failures] == ["tls", "tls"]
    assert first.destinations == second.destinations == [(LOOPBACK, tls_bot_api.port)]


async def test_verify_false_accepts_any_certificate(
    tls_bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """ssl.verify: false connects to a server whose certificate nobody vouches for."""
    async with client_for(tls_bot_api, proxy("socks5").url(), ssl={"verify": False}) as client:
        assert (await get_me(client, tls_bot_api))["id"] == 42


# --- what httpx sends and receives ------------------------------------------------------------


async def test_the_server_receives_the_request_httpx_built(
    echo: EchoServer, proxy: ProxyFactory
) -> None:
    """Method, target (percent-encoding kept), headers (cookies, auth, no additions) and body
    arrive exactly as httpx built them."""
    async with build_httpx_client(proxy=proxy("socks5").url()) as client:
        client.cookies.set("session", "c00kie")
        request = client.build_request(
            "PUT",
            f"{echo.base}/echo/a%2Fb%20c?q=%7E&x=1",
            content=b"raw bytes",
            headers={"X-Custom": "one", "X-Utf8": "café".encode()},
        )
        request.headers["X-Empty"] = ""
        response = await client.send(request, auth=("user", "pa55"))  # adds its header
    seen = response.json()
    assert seen["method"] == "PUT"
    assert seen["target"] == "/echo/a%2Fb%20c?q=%7E&x=1"
    assert seen["headers"] == [[k.decode(), v.decode()] for k, v in request.headers.raw]
    names = [name.lower() for name, _ in seen["headers"]]
    assert "content-type" not in names  # aiohttp would have added application/octet-stream
    assert names.count("cookie") == 1
    assert names.count("authorization") == 1
    assert seen["body_length"] == len(b"raw bytes")


async def test_cookies_are_kept_by_httpx_alone(echo: EchoServer, proxy: ProxyFactory) -> None:
    """A cookie the server sets is sent back by httpx's cookie jar, and not once httpx forgot it."""
    base = echo.base.replace(LOOPBACK, "localhost")  # aiohttp's jar would ignore an IP address

    def cookies(response: httpx.Response) -> list[str]:
        return [v for k, v in response.json()["headers"] if k.lower() == "cookie"]

    async with build_httpx_client(proxy=proxy("socks5").url()) as client:
        await client.get(f"{base}/set-cookie")
        assert cookies(await client.get(f"{base}/echo/kept")) == ["flavour=oat"]
        client.cookies.clear()
        assert cookies(await client.get(f"{base}/echo/forgotten")) == []


async def test_ipv6_literal_reaches_the_proxy_as_an_address(proxy: ProxyFactory) -> None:
    """A URL with an IPv6 literal asks the proxy for that address (nothing listens there)."""
    server, port = proxy("socks5"), free_port()
    async with build_httpx_client(proxy=server.url()) as client:
        with pytest.raises(httpx.ConnectError, match=rf"refused to connect to \[::1\]:{port}"):
            await client.get(f"http://[::1]:{port}/")
    assert server.destinations == [("::1", port)]


async def test_credentials_in_the_url_are_sent_once(echo: EchoServer, proxy: ProxyFactory) -> None:
    """User info in the URL becomes one Authorization header (httpx's), not two."""
    async with build_httpx_client(proxy=proxy("socks5").url()) as client:
        url = echo.base.replace("http://", "http://user:pa55@") + "/echo/x"
        response = await client.get(url)
    headers = [(k.lower(), v) for k, v in response.json()["headers"]]
    expected = "Basic " + base64.b64encode(b"user:pa55").decode()
    assert [v for k, v in headers if k == "authorization"] == [expected]


async def test_streamed_request_body_is_sent_chunked(echo: EchoServer, proxy: ProxyFactory) -> None:
    """A body from an async generator goes out in chunked encoding, every byte of it."""

    async def upload() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 1000
            await asyncio.sleep(0)

    async with build_httpx_client(proxy=proxy("http").url()) as client:
        response = await client.post(f"{echo.base}/echo/upload", content=upload())
    seen = response.json()
    headers = {k.lower(): v for k, v in seen["headers"]}
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    assert seen["body_length"] == 10_000


async def test_response_body_streams_in_pieces(echo: EchoServer, proxy: ProxyFactory) -> None:
    """A 4 MiB response is read as it arrives, in several pieces adding up to all of it."""
    async with (
        build_httpx_client(proxy=proxy("socks5").url()) as client,
        client.stream("GET", f"{echo.base}/big") as response,
    ):
        sizes = [len(chunk) async for chunk in response.aiter_raw()]
    assert sum(sizes) == echo.big_size
    assert len(sizes) > 4
    assert max(sizes) < echo.big_size


async def test_leaving_a_stream_early_keeps_the_client_usable(
    echo: EchoServer, proxy: ProxyFactory
) -> None:
    """Closing a response half read drops its connection; the next request gets a new one."""
    server = proxy("socks5")
    async with build_httpx_client(proxy=server.url()) as client:
        async with client.stream("GET", f"{echo.base}/big") as response:
            async for _chunk in response.aiter_raw():
                break
        again = await client.get(f"{echo.base}/echo/after")
    assert again.json()["target"] == "/echo/after"
    assert len(server.destinations) == 2


async def test_compressed_body_is_decoded_once_by_httpx(
    echo: EchoServer, proxy: ProxyFactory
) -> None:
    """A gzip response reaches httpx compressed and is decoded by httpx."""
    async with build_httpx_client(proxy=proxy("socks5").url()) as client:
        response = await client.get(f"{echo.base}/gzip")
    assert response.headers["content-encoding"] == "gzip"
    assert response.json() == {"compressed": True}


async def test_redirects_are_httpx_s_to_follow(echo: EchoServer, proxy: ProxyFactory) -> None:
    """A redirect is returned as is, and followed only when httpx is asked to."""
    async with build_httpx_client(proxy=proxy("socks5").url()) as client:
        response = await client.get(f"{echo.base}/redirect")
        assert response.status_code == 302
        followed = await client.get(f"{echo.base}/redirect", follow_redirects=True)
    assert followed.json()["target"] == "/echo/redirected"
    assert [r.status_code for r in followed.history] == [302]


async def test_response_metadata_is_httpx_s(bot_api: BotApiStandIn, proxy: ProxyFactory) -> None:
    """Status, reason phrase, HTTP version and headers come through to httpx.Response."""
    async with client_for(bot_api, proxy("socks5").url()) as client:
        response = await client.get(f"{bot_api.base}/bot{TOKEN}/nope")
    assert (response.status_code, response.reason_phrase) == (404, "Not Found")
    assert response.http_version == "HTTP/1.1"
    assert response.headers["content-type"].startswith("application/json")


# --- failures after connecting ---------------------------------------------------------------


async def test_read_timeout_is_httpx_read_timeout(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A server slower than httpx's read timeout raises httpx.ReadTimeout, not a route error."""
    bot_api.delay = PATIENT  # not answered in the test's time
    async with client_for(bot_api, proxy("socks5").url()) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout) as caught:
            await client.post(get_me_url(bot_api), timeout=httpx.Timeout(PATIENT, read=0.3))
        elapsed = time.monotonic() - started
    assert not isinstance(caught.value, RouteError)
    assert 0.25 < elapsed < 0.3 + LATE
    assert caught.value.request.url == get_me_url(bot_api)


async def test_server_hanging_up_is_a_remote_protocol_error_sent_once(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A server that drops the connection after the request is httpx.RemoteProtocolError; the
    request is neither resent nor sent through the fallback."""
    main, backup = proxy("socks5"), proxy("socks5")
    async with client_for(bot_api, main.url(), fallback=[backup.url()]) as client:
        await get_me(client, bot_api)  # the connection is reused by the next request
        with pytest.raises(httpx.RemoteProtocolError, match="Server disconnected"):
            await client.post(f"{bot_api.base}/bot{TOKEN}/sendMessage", data={"text": "once"})
    assert [call.method for call in bot_api.calls] == ["getMe", "sendMessage"]
    assert backup.destinations == []


async def test_truncated_body_is_a_remote_protocol_error(
    raw_server: Callable[[bytes | None], RawServer], proxy: ProxyFactory
) -> None:
    """A body shorter than its Content-Length is httpx.RemoteProtocolError."""
    server = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"z" * 10)
    async with build_httpx_client(proxy=proxy("socks5").url()) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"{server.base}/")


async def test_a_reply_that_is_not_http_is_a_remote_protocol_error(
    raw_server: Callable[[bytes | None], RawServer], proxy: ProxyFactory
) -> None:
    """An answer that is not HTTP at all is httpx.RemoteProtocolError saying so."""
    server = raw_server(b"SSH-2.0-OpenSSH_9.2p1\r\n")
    async with build_httpx_client(proxy=proxy("http").url()) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="not valid HTTP"):
            await client.get(f"{server.base}/")


async def test_stalled_upload_is_a_write_timeout(
    raw_server: Callable[[bytes | None], RawServer], proxy: ProxyFactory
) -> None:
    """An upload the server stops reading raises httpx.WriteTimeout after the write timeout."""
    server = raw_server(None)
    async with build_httpx_client(proxy=proxy("socks5").url()) as client:
        started = time.monotonic()
        with pytest.raises(httpx.WriteTimeout, match=r"0\.3 s write timeout"):
            await client.post(
                f"{server.base}/upload",
                content=b"u" * (64 * 1024 * 1024),  # more than every buffer on the way holds
                timeout=httpx.Timeout(PATIENT, write=0.3),
            )
    assert time.monotonic() - started < 0.3 + LATE


# --- resources --------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_closing_the_client_releases_everything(
    scheme: str,
    bot_api: BotApiStandIn,
    tls_bot_api: BotApiStandIn,
    proxy: ProxyFactory,
    ca_file: Path,
) -> None:
    """Fifty clients, each with concurrent requests, closed: no file descriptor left open and
    nothing reported unclosed."""
    api = tls_bot_api if scheme == "https" else bot_api
    server = proxy("socks5", "u", SENTINEL)
    problems: list[str] = []
    asyncio.get_running_loop().set_exception_handler(
        lambda _loop, context: problems.append(str(context.get("message")))
    )

    async def cycle() -> None:
        async with client_for(api, server.url(), ssl={"ca_file": ca_file}) as client:
            await asyncio.gather(*(get_me(client, api) for _ in range(4)))

    await cycle()  # warm up: lazy imports, the CA file's context
    baseline = await settle(open_fds())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(50):
            await cycle()
        after = await settle(baseline)
        gc.collect()
    assert after <= baseline
    assert [str(w.message) for w in caught] == []
    assert problems == []
    assert len(api.calls) == 51 * 4


async def test_a_transport_closed_cannot_be_used(bot_api: BotApiStandIn) -> None:
    """After aclose() the transport refuses requests instead of opening new connections."""
    transport = build_httpx_transport(api={"base": bot_api.base})
    await transport.aclose()
    with pytest.raises(RuntimeError, match="transport is closed"):
        await transport.handle_async_request(httpx.Request("POST", get_me_url(bot_api)))


async def test_transport_alone_answers_and_names_the_request_in_errors(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """The transport works without a client, and its route errors carry the request."""
    transport = build_httpx_transport(proxy=proxy("socks4").url())
    async with transport:
        request = httpx.Request("POST", get_me_url(bot_api), data={"x": "1"})  # no timeouts
        response = await transport.handle_async_request(request)
        await response.aread()
        assert json.loads(response.content)["result"] == BOT_USER
    assert bot_api.calls[0].form == {"x": "1"}
    dead = build_httpx_transport(proxy=f"socks4://127.0.0.1:{free_port()}")
    request = httpx.Request("POST", get_me_url(bot_api))
    async with dead:
        with pytest.raises(httpx.ConnectError) as caught:
            await dead.handle_async_request(request)
    assert caught.value.request is request


# --- configuration --------------------------------------------------------------------------


async def test_direct_connection_without_a_proxy(bot_api: BotApiStandIn) -> None:
    """With no proxy configured the client connects directly."""
    async with build_httpx_client(api={"base": bot_api.base}) as client:
        assert await get_me(client, bot_api) == BOT_USER


async def test_direct_connection_refused_is_httpx_connect_error() -> None:
    """Without a proxy, a refused connection is httpx's plain ConnectError."""
    async with build_httpx_client() as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get(f"http://127.0.0.1:{free_port()}/")
    assert not isinstance(caught.value, RouteError)


async def test_route_from_bot_yaml_and_environment(
    bot_api: BotApiStandIn, proxy: ProxyFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bot.yaml names the proxy, BOT_PROXY__PASSWORD holds its password: the route works."""
    server = proxy("socks5", "mia", SENTINEL)
    (tmp_path / "bot.yaml").write_text(
        f"proxy: socks5://mia@127.0.0.1:{server.port}\napi:\n  base: {bot_api.base}\n"
    )
    monkeypatch.setenv("BOT_PROXY__PASSWORD", SENTINEL)
    async with httpx.AsyncClient(transport=build_httpx_transport()) as client:
        await get_me(client, bot_api)
    assert server.destinations == [(LOOPBACK, bot_api.port)]


async def test_environment_proxies_are_ignored_by_httpx(
    bot_api: BotApiStandIn, proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With botsession's transport, httpx does not send requests to HTTP_PROXY/ALL_PROXY."""
    ours, theirs = proxy("socks5"), proxy("http")
    monkeypatch.setenv("HTTP_PROXY", theirs.url())
    monkeypatch.setenv("ALL_PROXY", theirs.url())
    transport = build_httpx_transport(proxy=ours.url())
    async with httpx.AsyncClient(transport=transport) as client:  # trust_env=True by default
        await get_me(client, bot_api)
    assert ours.destinations == [(LOOPBACK, bot_api.port)]
    assert theirs.destinations == []


async def test_trust_env_in_the_configuration_is_botsession_s(
    bot_api: BotApiStandIn, proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trust_env: true takes the route from HTTP_PROXY as botsession reads it."""
    server = proxy("http")
    monkeypatch.setenv("HTTP_PROXY", server.url())
    async with build_httpx_client(api={"base": bot_api.base}, trust_env=True) as client:
        await get_me(client, bot_api)
    assert server.destinations == [(LOOPBACK, bot_api.port)]


async def test_an_explicit_httpx_proxy_bypasses_the_transport(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """httpx mounts proxy= in front of any transport: docs/frameworks/httpx.md warns not to pass it."""
    ours, theirs = proxy("socks5"), proxy("socks5")
    transport = build_httpx_transport(proxy=ours.url())
    async with httpx.AsyncClient(transport=transport, proxy=theirs.url("socks5")) as client:
        await get_me(client, bot_api)
    assert ours.destinations == []
    assert theirs.destinations == [(LOOPBACK, bot_api.port)]


def test_client_settings_come_from_the_configuration() -> None:
    """timeout and connect_timeout become the client's timeouts; trust_env is off."""
    client = build_httpx_client(proxy="socks5://127.0.0.1:1080", timeout=30, connect_timeout=4)
    assert client.timeout == httpx.Timeout(30, connect=4)
    assert client.trust_env is False
    assert isinstance(client._transport, RouteTransport)


def test_bad_configuration_is_a_config_error(tmp_path: Path) -> None:
    """Both builders validate like load_config and report every problem."""
    for build in (build_httpx_transport, build_httpx_client):
        with pytest.raises(ConfigError) as caught:
            build(proxy="socks9://127.0.0.1:1", limit=0)
        assert len(caught.value.problems) == 2


def test_building_opens_nothing() -> None:
    """Building a transport or client opens no connection and needs no event loop."""
    before = open_fds()
    built = [build_httpx_transport(proxy="socks5://127.0.0.1:1") for _ in range(20)]
    assert open_fds() == before
    assert all(isinstance(transport, RouteTransport) for transport in built)


# --- secrets ---------------------------------------------------------------------------------


def secret_url(port: int) -> str:
    """A socks5 URL whose password is the sentinel (built here: the tests hold it in no local)."""
    return f"socks5://u:{quote(SENTINEL, safe='')}@127.0.0.1:{port}"


async def test_rejected_password_leaks_nowhere(
    bot_api: BotApiStandIn, proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A proxy refusing the secret password: neither the error, its traceback's locals, the
    transport's repr nor DEBUG logs show it."""
    caplog.set_level(logging.DEBUG)
    guarded = proxy("socks5", "u", "the-right-one")
    async with client_for(bot_api, secret_url(guarded.port)) as client:
        transport = client._transport
        with pytest.raises(httpx.ConnectError) as caught:
            await get_me(client, bot_api)
    assert isinstance(caught.value, ProxyHopError)
    assert caught.value.reason == "auth"
    assert leaks([*traceback_texts(caught.value), repr(transport), caplog.text]) == []
    assert (
        repr(transport)
        == f"RouteTransport(ProxyRoute('socks5://u:***@127.0.0.1:{guarded.port}'), limit=100)"
    )


def test_config_errors_leak_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad configuration whose password comes from the environment: nothing shows it."""
    monkeypatch.setenv("BOT_PROXY", secret_url(1080))
    monkeypatch.setenv("BOT_LIMIT", "many")
    for build in (build_httpx_transport, build_httpx_client):
        with pytest.raises(ConfigError) as caught:
            build()
        assert leaks(traceback_texts(caught.value)) == []


def test_route_errors_survive_pickling() -> None:
    """A ProxyHopError raised through httpx pickles back to a ProxyHopError with its fields."""
    from botsession.httpx_transport import as_httpx_error

    error = as_httpx_error(ProxyHopError(2, 3, "socks5://h:1", "timeout", "no answer"))
    assert isinstance(error, httpx.ConnectTimeout)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert isinstance(copy, ProxyHopError)
    assert (copy.hop_number, copy.reason, str(copy)) == (2, "timeout", str(error))


# --- importing ------------------------------------------------------------------------------


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_import_botsession_does_not_import_httpx() -> None:
    """httpx is loaded only by botsession.httpx_transport."""
    result = run_python("import sys, botsession; print('httpx' in sys.modules)")
    assert result.stdout.strip() == "False", result.stderr


def test_missing_httpx_names_the_extra() -> None:
    """Without httpx installed, the module says which extra to install."""
    result = run_python(
        "import sys; sys.modules['httpx'] = None\n"
        "try:\n"
        "    import botsession.httpx_transport\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    assert result.stdout.strip() == (
        "botsession.httpx_transport needs httpx: pip install 'botsession[httpx]' "
        "(or: pip install -e '.[httpx]' from a checkout)"
    ), result.stderr
