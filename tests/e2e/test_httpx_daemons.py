"""httpx through the real Debian daemons: danted, microsocks, tinyproxy and ssh -D.

Which hops carried a request is read from the daemons' own logs. Under CI (any non-empty CI but
0/false) a missing daemon fails these tests; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from botsession import ProxyHopError
from botsession.httpx_transport import build_httpx_client

from ..servers import BotApiStandIn, SilentServer
from ..support import BOT_USER, LATE, LOOPBACK, SENTINEL, TOKEN, free_port
from .daemons import RunningProxy

pytestmark = pytest.mark.daemons


class Watch:
    """The destinations a daemon logs from now on (the daemons are shared by all tests)."""

    def __init__(self, daemon: RunningProxy) -> None:
        self.daemon = daemon
        self.before = len(daemon.destinations())

    def new(self, expect_port: int | None = None) -> list[tuple[str, int]]:
        if expect_port is not None:
            self.daemon.wait_for_destination(expect_port)
        return self.daemon.destinations()[self.before :]


def client_for(
    api: BotApiStandIn, proxy: Any, *, host: str = LOOPBACK, **settings: Any
) -> httpx.AsyncClient:
    """An httpx client for the stand-in API (optionally addressed by another host name)."""
    return build_httpx_client(proxy=proxy, api={"base": base_of(api, host)}, **settings)


def base_of(api: BotApiStandIn, host: str = LOOPBACK) -> str:
    return api.base.replace(LOOPBACK, host)


async def get_me(client: httpx.AsyncClient, api: BotApiStandIn, host: str = LOOPBACK) -> Any:
    response = await client.post(f"{base_of(api, host)}/bot{TOKEN}/getMe")
    assert response.status_code == 200
    return response.json()["result"]


async def test_get_me_through_all_four_daemons(
    bot_api: BotApiStandIn,
    dante: RunningProxy,
    micro: RunningProxy,
    tiny: RunningProxy,
    ssh_proxy: RunningProxy,
) -> None:
    """danted → microsocks (password) → tinyproxy (password) → ssh -D (socks4a): each hop
    logs the next, and the last resolves the API's name itself."""
    watches = [Watch(d) for d in (dante, micro, tiny, ssh_proxy)]
    route = [dante.url("socks5"), micro.url("socks5"), tiny.url("http"), ssh_proxy.url("socks4a")]
    async with client_for(bot_api, route, host="localhost") as client:
        assert await get_me(client, bot_api, "localhost") == BOT_USER
    assert watches[0].new(micro.port) == [(LOOPBACK, micro.port)]
    assert watches[1].new(tiny.port) == [(LOOPBACK, tiny.port)]
    assert watches[2].new(ssh_proxy.port) == [(LOOPBACK, ssh_proxy.port)]
    assert watches[3].new(bot_api.port) == [("localhost", bot_api.port)]
    assert [call.method for call in bot_api.calls] == ["getMe"]


async def test_dante_socks5(bot_api: BotApiStandIn, dante: RunningProxy) -> None:
    """Dante carries a request given as socks5."""
    watch = Watch(dante)
    async with client_for(bot_api, dante.url("socks5")) as client:
        await get_me(client, bot_api)
    assert watch.new(bot_api.port) == [(LOOPBACK, bot_api.port)]


async def test_dante_plain_socks4_gets_an_address(
    bot_api: BotApiStandIn, dante: RunningProxy
) -> None:
    """socks4:// resolves the name on this machine, so strict SOCKS4 Dante accepts it."""
    watch = Watch(dante)
    async with client_for(bot_api, dante.url("socks4"), host="localhost") as client:
        await get_me(client, bot_api, "localhost")
    assert watch.new(bot_api.port) == [(LOOPBACK, bot_api.port)]


async def test_microsocks_with_password(bot_api: BotApiStandIn, micro: RunningProxy) -> None:
    """microsocks accepts the user name and password and carries the request."""
    watch = Watch(micro)
    async with client_for(bot_api, micro.url("socks5")) as client:
        await get_me(client, bot_api)
    assert watch.new(bot_api.port) == [(LOOPBACK, bot_api.port)]


async def test_tinyproxy_with_basic_auth(bot_api: BotApiStandIn, tiny: RunningProxy) -> None:
    """tinyproxy accepts HTTP CONNECT with Basic credentials and carries the request."""
    watch = Watch(tiny)
    async with client_for(bot_api, tiny.url("http")) as client:
        await get_me(client, bot_api)
    assert watch.new(bot_api.port) == [(LOOPBACK, bot_api.port)]


async def test_ssh_dynamic_forward_as_socks4a(
    bot_api: BotApiStandIn, ssh_proxy: RunningProxy
) -> None:
    """socks4a:// hands the name to ssh -D, which resolves it on the far side."""
    watch = Watch(ssh_proxy)
    async with client_for(bot_api, ssh_proxy.url("socks4a"), host="localhost") as client:
        await get_me(client, bot_api, "localhost")
    assert watch.new(bot_api.port) == [("localhost", bot_api.port)]


async def test_wrong_password_on_microsocks_names_hop_two(
    bot_api: BotApiStandIn, dante: RunningProxy, micro: RunningProxy
) -> None:
    """A wrong password at hop 2 is an httpx.ConnectError naming hop 2, with no password."""
    wrong = {"url": micro.url("socks5", credentials=False), "username": "mia", "password": "nope"}
    async with client_for(bot_api, [dante.url("socks5"), wrong]) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await get_me(client, bot_api)
    assert isinstance(caught.value, ProxyHopError)
    assert str(caught.value).startswith(
        f"proxy hop 2 of 2 (socks5://mia:***@127.0.0.1:{micro.port}): "
        "the proxy rejected the credentials"
    )
    assert "nope" not in str(caught.value)
    assert SENTINEL not in str(caught.value)
    assert bot_api.calls == []


async def test_dead_hop_after_dante_is_reported_by_dante(
    bot_api: BotApiStandIn, dante: RunningProxy
) -> None:
    """A dead hop 2 is reported by Dante at hop 1, naming hop 2's address."""
    port = free_port()
    async with client_for(bot_api, [dante.url("socks5"), f"socks5://127.0.0.1:{port}"]) as client:
        with pytest.raises(
            httpx.ConnectError, match=rf"proxy hop 1 of 2 .* to 127.0.0.1:{port} \(hop 2\)"
        ):
            await get_me(client, bot_api)


async def test_silent_hop_behind_dante_is_a_connect_timeout(
    bot_api: BotApiStandIn, dante: RunningProxy, silent_server: SilentServer
) -> None:
    """A hop that never answers, behind a real proxy, is an httpx.ConnectTimeout in time."""
    route = [dante.url("socks5"), f"http://127.0.0.1:{silent_server.port}"]
    async with client_for(bot_api, route, connect_timeout=1) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ConnectTimeout, match=r"proxy hop 2 of 2 .*no answer within"):
            await get_me(client, bot_api)
    assert 0.9 < time.monotonic() - started < 1 + LATE


async def test_dead_primary_falls_back_to_tinyproxy(
    bot_api: BotApiStandIn, tiny: RunningProxy
) -> None:
    """A refused primary route sends the request through tinyproxy, once."""
    watch = Watch(tiny)
    dead = f"socks5://127.0.0.1:{free_port()}"
    async with client_for(bot_api, dead, fallback=[tiny.url("http")]) as client:
        await get_me(client, bot_api)
    assert watch.new(bot_api.port) == [(LOOPBACK, bot_api.port)]
    assert len(bot_api.calls) == 1


async def test_limit_kept_through_dante(bot_api: BotApiStandIn, dante: RunningProxy) -> None:
    """limit=2 allows exactly two simultaneous requests through Dante."""
    bot_api.delay = 0.3
    async with client_for(bot_api, dante.url("socks5"), limit=2) as client:
        url = f"{bot_api.base}/bot{TOKEN}/getUpdates"
        await asyncio.gather(*(client.post(url) for _ in range(6)))
    assert (bot_api.max_in_flight, len(bot_api.calls)) == (2, 6)


async def test_tls_through_microsocks(
    tls_bot_api: BotApiStandIn, micro: RunningProxy, ca_file: Path
) -> None:
    """HTTPS end to end through a real proxy is verified with ssl.ca_file."""
    watch = Watch(micro)
    async with client_for(tls_bot_api, micro.url("socks5"), ssl={"ca_file": ca_file}) as client:
        assert (await get_me(client, tls_bot_api))["id"] == 42
    assert watch.new(tls_bot_api.port) == [(LOOPBACK, tls_bot_api.port)]
