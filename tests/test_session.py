"""Real aiogram ``Bot`` calls through real (in-process) proxies to a stand-in Bot API server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError

import botsession
from botsession import (
    AiohttpSession,
    ConfigError,
    ProxyRoute,
    build_client_session,
    build_session_from_config,
)

from .conftest import ProxyFactory
from .servers import BackgroundLoop, BotApiStandIn, SilentServer
from .support import (
    LATE,
    PATIENT,
    SENTINEL,
    TOKEN,
    basic_auth,
    free_port,
    get_me,
    session_for,
)


@pytest.fixture
async def closing() -> AsyncIterator[list[AiohttpSession]]:
    """Sessions appended here are closed after the test."""
    sessions: list[AiohttpSession] = []
    yield sessions
    for session in sessions:
        await session.close()


async def test_direct_without_proxy(bot_api: BotApiStandIn) -> None:
    """No proxy configured means a direct connection that works."""
    me = await get_me(session_for(bot_api, None))
    assert me.username == "standin_bot"
    assert [call.method for call in bot_api.calls] == ["getMe"]
    assert bot_api.calls[0].token == TOKEN


@pytest.mark.parametrize(
    ("url_scheme", "server_kind", "sent_host"),
    [
        ("socks5", "socks5", "localhost"),  # remote DNS by default, as aiogram
        ("socks5h", "socks5", "localhost"),
        ("socks4a", "socks4", "localhost"),  # the proxy resolves
        ("socks4", "socks4", "127.0.0.1"),  # the client resolves: strict SOCKS4 servers need that
        ("http", "http", "localhost"),
    ],
)
async def test_each_protocol_and_where_names_are_resolved(
    bot_api: BotApiStandIn, proxy: ProxyFactory, url_scheme: str, server_kind: str, sent_host: str
) -> None:
    """getMe works through each protocol, and the target name is resolved where the protocol says."""
    server = proxy(server_kind)
    me = await get_me(session_for(bot_api, server.url(url_scheme), host="localhost"))
    assert me.id == 42
    assert server.destinations == [(sent_host, bot_api.port)]


async def test_socks5_local_dns_when_rdns_is_off(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """``rdns: false`` makes socks5 send an address instead of the name."""
    server = proxy("socks5")
    await get_me(session_for(bot_api, {"url": server.url(), "rdns": False}, host="localhost"))
    assert server.destinations == [("127.0.0.1", bot_api.port)]


async def test_four_hop_chain_of_mixed_protocols_uses_every_hop(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A chain socks5(auth) → http(auth) → socks4 → socks4a reaches the API through each hop in order."""
    hops = [
        proxy("socks5", "alice", SENTINEL),
        proxy("http", "bob", "b0b/pass#word"),
        proxy("socks4"),
        proxy("socks4"),
    ]
    route = [
        hops[0].url(),
        {"url": hops[1].url(credentials=False), "username": "bob", "password": "b0b/pass#word"},
        hops[2].url(),
        hops[3].url("socks4a"),
    ]
    me = await get_me(session_for(bot_api, route))
    assert me.first_name == "Stand-in"
    assert [h.destinations for h in hops] == [
        [("127.0.0.1", hops[1].port)],
        [("127.0.0.1", hops[2].port)],
        [("127.0.0.1", hops[3].port)],
        [("127.0.0.1", bot_api.port)],
    ]


async def test_basic_auth_wins_over_url_credentials(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """``(url, BasicAuth)``: the BasicAuth credentials are the ones sent, as aiogram documents."""
    server = proxy("http", "carol", "right")
    wrong_in_url = server.url().replace(":right@", ":wrong@")
    await get_me(session_for(bot_api, (wrong_in_url, basic_auth("carol", "right"))))
    assert server.destinations == [("127.0.0.1", bot_api.port)]
    with pytest.raises(TelegramNetworkError, match="rejected the credentials"):
        await get_me(session_for(bot_api, (server.url(), basic_auth("carol", "wrong"))))


async def test_two_tuple_of_urls_is_a_chain(bot_api: BotApiStandIn, proxy: ProxyFactory) -> None:
    """``(url1, url2)`` goes through both proxies (aiogram would use only one)."""
    first, second = proxy("socks5"), proxy("http")
    await get_me(session_for(bot_api, (first.url(), second.url())))
    assert first.destinations == [("127.0.0.1", second.port)]
    assert second.destinations == [("127.0.0.1", bot_api.port)]


async def test_wrong_password_is_a_network_error_naming_the_hop(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """Rejected credentials on hop 2 raise TelegramNetworkError naming hop 2, without the password."""
    first, second = proxy("socks5"), proxy("socks5", "dave", "correct")
    route = [
        first.url(),
        {"url": second.url(credentials=False), "username": "dave", "password": SENTINEL},
    ]
    with pytest.raises(TelegramNetworkError) as caught:
        await get_me(session_for(bot_api, route))
    message = str(caught.value)
    assert (
        f"proxy hop 2 of 2 (socks5://dave:***@127.0.0.1:{second.port}): the proxy rejected the credentials"
        in message
    )
    assert SENTINEL not in message
    assert bot_api.calls == []


async def test_missing_credentials_are_reported(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A proxy that wants credentials we do not send says it requires them."""
    server = proxy("http", "erin", "pw")
    with pytest.raises(
        TelegramNetworkError,
        match=r"proxy hop 1 of 1 \(http://127.0.0.1:\d+\): the proxy requires credentials",
    ):
        await get_me(session_for(bot_api, server.url(credentials=False)))


async def test_dead_first_hop_is_refused(bot_api: BotApiStandIn) -> None:
    """Nothing listening on hop 1 gives 'connection refused' for hop 1 at once."""
    port = free_port()
    started = time.monotonic()
    with pytest.raises(
        TelegramNetworkError,
        match=rf"proxy hop 1 of 1 \(socks5://127.0.0.1:{port}\): connection refused",
    ):
        await get_me(session_for(bot_api, f"socks5://127.0.0.1:{port}", connect_timeout=PATIENT))
    assert time.monotonic() - started < PATIENT / 2


async def test_dead_later_hop_is_named_by_the_hop_before(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """When hop 2 is dead, hop 1 reports it could not reach hop 2's address."""
    first = proxy("socks5")
    port = free_port()
    with pytest.raises(TelegramNetworkError) as caught:
        await get_me(session_for(bot_api, [first.url(), f"http://127.0.0.1:{port}"]))
    assert (
        f"proxy hop 1 of 2 (socks5://127.0.0.1:{first.port}): the proxy refused to connect to 127.0.0.1:{port} (hop 2)"
        in str(caught.value)
    )


async def test_silent_proxy_fails_within_connect_timeout(
    bot_api: BotApiStandIn, proxy: ProxyFactory, silent_server: SilentServer
) -> None:
    """A hop that accepts and never answers fails after connect_timeout, not aiogram's 60 s."""
    first = proxy("socks5")
    route = [first.url(), f"socks5://127.0.0.1:{silent_server.port}"]
    session = session_for(bot_api, route, connect_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(
        TelegramNetworkError,
        match=r"proxy hop 2 of 2 \(socks5://127.0.0.1:\d+\): no answer within the 0.5 s connect timeout",
    ):
        await get_me(session)
    elapsed = time.monotonic() - started
    assert 0.45 < elapsed < 0.5 + LATE  # the close() of aiogram's session adds 0.25 s
    assert silent_server.accepted >= 1


async def test_wrong_protocol_is_a_protocol_error(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """Speaking HTTP to a SOCKS5 proxy is reported as a handshake problem of that hop."""
    server = proxy("socks5")
    with pytest.raises(
        TelegramNetworkError,
        match=r"proxy hop 1 of 1 \(http://127.0.0.1:\d+\): the reply is not HTTP: it starts with bytes .*; it answered like a SOCKS proxy: is "
        r"its scheme socks5:// \(or socks4://\) rather than http://\?",
    ):
        await get_me(session_for(bot_api, server.url("http"), connect_timeout=2))


@pytest.mark.parametrize(("limit", "expected"), [(3, 3), (8, 8)])
async def test_limit_is_kept_with_a_proxy(
    bot_api: BotApiStandIn, proxy: ProxyFactory, limit: int, expected: int
) -> None:
    """``limit`` caps simultaneous requests through a proxy (aiogram drops it there)."""
    server = proxy("socks5")
    bot_api.delay = 0.3
    session = session_for(bot_api, server.url(), limit=limit)
    async with Bot(TOKEN, session=session) as bot:
        await asyncio.gather(*(bot.get_updates() for _ in range(12)))
    assert bot_api.max_in_flight == expected
    assert len(bot_api.calls) == 12


async def test_tls_context_is_kept_with_a_proxy(
    tls_bot_api: BotApiStandIn, proxy: ProxyFactory, ca_file: Path
) -> None:
    """HTTPS through a proxy verifies with ssl.ca_file; without it the unknown CA is refused."""
    server = proxy("socks5")
    me = await get_me(session_for(tls_bot_api, server.url(), ssl={"ca_file": ca_file}))
    assert me.id == 42
    with pytest.raises(TelegramNetworkError, match="certificate verify failed"):
        await get_me(session_for(tls_bot_api, server.url()))
    assert len(tls_bot_api.calls) == 1
    await get_me(session_for(tls_bot_api, server.url(), ssl={"verify": False}))
    assert len(tls_bot_api.calls) == 2


async def test_tls_server_that_never_answers_fails_within_connect_timeout(
    bot_api: BotApiStandIn,
    proxy: ProxyFactory,
    silent_server: SilentServer,
    background: BackgroundLoop,
) -> None:
    """An https server behind the route that never speaks TLS, or hangs up, is a clear network error."""
    server = proxy("socks5")
    base = {"base": f"https://127.0.0.1:{silent_server.port}"}
    session = build_session_from_config(proxy=server.url(), api=base, connect_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(
        TelegramNetworkError,
        match=rf"proxy hop 1 of 1 .*: no answer within the 0.5 s connect timeout \(waiting for the TLS handshake with 127.0.0.1:{silent_server.port}\)",
    ):
        await get_me(session)
    assert 0.45 < time.monotonic() - started < 0.5 + LATE
    hanging_up = SilentServer(background, hang_up=True).start()
    try:
        base = {"base": f"https://127.0.0.1:{hanging_up.port}"}
        session = build_session_from_config(proxy=server.url(), api=base)
        with pytest.raises(
            TelegramNetworkError,
            match=rf"proxy hop 1 of 1 .*: the (proxy closed the connection|connection was reset) while .* the TLS handshake with 127.0.0.1:{hanging_up.port}",
        ):
            await get_me(session)
    finally:
        hanging_up.stop()


async def test_proxy_setter_validates_and_switches(
    bot_api: BotApiStandIn, proxy: ProxyFactory, closing: list[AiohttpSession]
) -> None:
    """Setting ``proxy`` re-validates (a bad value changes nothing) and the next request uses the new route."""
    old, new = proxy("socks5"), proxy("http")
    session = session_for(bot_api, old.url())
    closing.append(session)
    bot = Bot(TOKEN, session=session)
    await bot.get_me()
    with pytest.raises(ConfigError, match="unsupported protocol 'socks6'"):
        session.proxy = "socks6://127.0.0.1:1"
    await bot.get_me()
    first_client = await session.create_session()
    session.proxy = new.url()
    assert isinstance(session.proxy, ProxyRoute)
    await bot.get_me()
    assert first_client.closed
    assert old.destinations == [("127.0.0.1", bot_api.port)]  # one tunnel, kept alive
    assert new.destinations == [("127.0.0.1", bot_api.port)]
    session.proxy = None
    await bot.get_me()
    assert len(bot_api.calls) == 4
    assert len(new.destinations) == 1


async def test_session_constructor_is_a_drop_in_for_aiogram(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """``AiohttpSession(proxy=..., limit=...)`` takes aiogram's arguments and validates the proxy."""
    from aiogram.client.telegram import TelegramAPIServer

    server = proxy("socks5")
    session = AiohttpSession(
        proxy=server.url(), limit=5, api=TelegramAPIServer.from_base(bot_api.base), timeout=30
    )
    assert isinstance(session, __import__("aiogram").client.session.aiohttp.AiohttpSession)
    assert (session.config.limit, session.timeout) == (5, 30)
    await get_me(session)
    assert server.destinations == [("127.0.0.1", bot_api.port)]
    with pytest.raises(ConfigError, match="keyword argument connect_timeout="):
        AiohttpSession(proxy=server.url(), connect_timeout=0)


async def test_proxy_connector_keeps_limit_tls_and_dns_cache(
    ca_file: Path, closing: list[AiohttpSession]
) -> None:
    """The connector built for a proxy gets the configured limit, TLS context and DNS cache TTL."""
    session = build_session_from_config(
        proxy="socks5://127.0.0.1:1", limit=7, ssl={"ca_file": ca_file}
    )
    closing.append(session)
    client = await session.create_session()
    connector = client.connector
    assert type(connector).__name__ == "RouteConnector"
    assert connector is not None
    assert connector.limit == 7
    assert session._connector_init["ttl_dns_cache"] == 3600
    context = session._connector_init["ssl"]
    assert [c["subject"] for c in context.get_ca_certs()] == [
        c["subject"] for c in _ca_subjects(ca_file)
    ]


def _ca_subjects(ca_file: Path) -> list[dict[str, object]]:
    import ssl

    context = ssl.create_default_context(cafile=str(ca_file))
    return context.get_ca_certs()  # type: ignore[return-value]


async def test_response_models_are_built_once(bot_api: BotApiStandIn) -> None:
    """The parametrised Response model survives garbage collection between requests.

    aiogram builds ``Response[User]`` per request and pydantic keeps it only weakly, so without
    botsession's reference every collection forces a rebuild of the model and its schema.
    """
    import gc
    import weakref

    from aiogram.methods.base import Response
    from aiogram.types import User

    await get_me(session_for(bot_api, None))
    model = weakref.ref(Response[User])
    gc.collect()
    assert model() is not None
    assert model() is Response[User]


def test_session_repr_is_redacted() -> None:
    """The session's repr shows the route with the password masked."""
    session = build_session_from_config(proxy=f"socks5://alice:{SENTINEL}@127.0.0.1:1080")
    assert (
        repr(session)
        == "AiohttpSession(proxy=ProxyRoute('socks5://alice:***@127.0.0.1:1080'), limit=100, api='https://api.telegram.org')"
    )


def test_local_api_server_settings_reach_aiogram() -> None:
    """api.base and api.is_local become aiogram's TelegramAPIServer; timeout its timeout."""
    session = build_session_from_config(
        api={"base": "http://127.0.0.1:8081/", "is_local": True}, timeout=12
    )
    assert session.api.api_url("T", "getMe") == "http://127.0.0.1:8081/botT/getMe"
    assert session.api.is_local is True
    assert session.timeout == 12


async def test_plain_aiohttp_client_session_uses_the_route(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """build_client_session gives an aiohttp.ClientSession over the same chain."""
    first, second = proxy("socks5", "u", "p"), proxy("socks4")
    async with build_client_session(proxy=[first.url(), second.url("socks4a")]) as client:
        assert isinstance(client, aiohttp.ClientSession)
        async with client.post(f"{bot_api.base}/bot{TOKEN}/getMe") as response:
            assert (await response.json())["result"]["username"] == "standin_bot"
        port = free_port()
        with pytest.raises(botsession.ProxyHopError) as caught:
            await client.get(f"http://127.0.0.1:{port}/")
    assert caught.value.hop_number == 2
    assert caught.value.reason == "rejected"
    assert first.destinations == [("127.0.0.1", second.port)] * 2
    assert second.destinations[0] == ("127.0.0.1", bot_api.port)


@pytest.mark.parametrize(
    "make",
    [
        lambda base: build_session_from_config(api={"base": base}, timeout=5, connect_timeout=3),
        lambda base: build_session_from_config(api={"base": base}, timeout=5),
        lambda base: AiohttpSession(
            api=__import__("aiogram").client.telegram.TelegramAPIServer.from_base(base),
            timeout=5,
        ),
    ],
    ids=["builder-both", "builder-timeout-only", "drop-in-timeout-only"],
)
async def test_short_timeouts_are_a_drop_in(
    make: Any, bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A timeout under the default connect_timeout works everywhere; connect_timeout follows it."""
    session = make(bot_api.base)
    assert session.timeout == 5
    assert session.config.connect_timeout <= 5
    assert (await get_me(session)).id == 42


def test_short_timeout_in_bot_yaml_is_valid_and_builds(tmp_path: Path) -> None:
    """The same values in bot.yaml pass check and build a session (validated once)."""
    (tmp_path / "bot.yaml").write_text("timeout: 5\nconnect_timeout: 3\n")
    session = build_session_from_config(tmp_path / "bot.yaml")
    assert (session.timeout, session.config.connect_timeout) == (5, 3)
    (tmp_path / "bot.yaml").write_text("timeout: 4\n")
    assert build_session_from_config(tmp_path / "bot.yaml").config.connect_timeout == 4
    with pytest.raises(ConfigError, match="connect_timeout must not exceed timeout"):
        build_session_from_config(tmp_path / "bot.yaml", connect_timeout=6)
