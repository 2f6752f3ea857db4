"""Certificate pinning (aiohttp's ``ssl=Fingerprint(...)``) through a route: a match connects,
a mismatch is aiohttp's ``ServerFingerprintMismatch`` naming the server (it was a raw
ValueError), and a route that intercepts the connection is failed over like any TLS failure."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import ssl
import struct
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import trustme

from botsession import ProxyHopError, RouteStatus, build_client_session
from botsession.net import routing

from .conftest import ProxyFactory
from .servers import BackgroundLoop, BotApiStandIn, SilentServer, StreamServer
from .support import LOOPBACK, PATIENT, TOKEN


def fingerprint_of(api: BotApiStandIn) -> bytes:
    """The SHA-256 of the certificate the stand-in serves."""
    der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((LOOPBACK, api.port)))
    return hashlib.sha256(der).digest()


@dataclass
class HijackingSocks5(StreamServer):
    """A SOCKS5 proxy that says it connected where it was asked, and connects to ``to``
    instead: a route that intercepts the connection."""

    to: int = 0
    connections: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            _version, methods = await reader.readexactly(2)
            await reader.readexactly(methods)
            writer.write(b"\x05\x00")
            _head = await reader.readexactly(4)
            kind = _head[3]
            size = {1: 4, 4: 16}.get(kind) or (await reader.readexactly(1))[0]
            await reader.readexactly(size + 2)
            writer.write(b"\x05\x00\x00\x01" + bytes(4) + struct.pack(">H", 0))
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.to)
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    sink.close()


async def test_a_pinned_certificate_that_matches_connects_through_the_route(
    tls_bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """With the stand-in's own fingerprint pinned, the request goes through the proxy."""
    pin = aiohttp.Fingerprint(fingerprint_of(tls_bot_api))
    hop = proxy("socks5")
    async with (
        build_client_session(proxy=hop.url(), api={"base": tls_bot_api.base}) as session,
        session.get(f"{tls_bot_api.base}/bot{TOKEN}/getMe", ssl=pin) as response,
    ):
        assert (await response.json())["ok"] is True
    assert len(tls_bot_api.calls) == 1


async def test_a_pinned_certificate_that_differs_is_aiohttps_fingerprint_mismatch(
    tls_bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A wrong pin is aiohttp's ServerFingerprintMismatch naming the server (not the proxy),
    also a ProxyHopError with reason tls; nothing is sent."""
    wrong = bytes(32)
    hop = proxy("socks5")
    async with build_client_session(proxy=hop.url(), api={"base": tls_bot_api.base}) as session:
        with pytest.raises(aiohttp.ServerFingerprintMismatch) as caught:
            await session.get(
                f"{tls_bot_api.base}/bot{TOKEN}/getMe", ssl=aiohttp.Fingerprint(wrong)
            )
    error = caught.value
    assert isinstance(error, ProxyHopError)
    assert error.reason == "tls"
    assert (error.host, error.port) == (LOOPBACK, tls_bot_api.port)
    assert (error.expected, error.got) == (wrong, fingerprint_of(tls_bot_api))
    assert "is not the pinned one" in str(error)
    assert tls_bot_api.calls == []


async def test_a_route_that_intercepts_a_pinned_connection_is_failed_over(
    tls_bot_api: BotApiStandIn,
    proxy: ProxyFactory,
    background: BackgroundLoop,
) -> None:
    """A primary whose proxy hands the connection to another TLS server fails the pin (reason
    tls) and the fallback carries the request; the request arrives once."""
    impostor_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert(LOOPBACK).configure_cert(impostor_context)
    impostor = BotApiStandIn(background, tls=impostor_context).start()
    hijacker = HijackingSocks5(background, to=impostor.port).start()
    pin = aiohttp.Fingerprint(fingerprint_of(tls_bot_api))
    backup = proxy("socks5")
    try:
        settings = {
            "proxy": f"socks5://{LOOPBACK}:{hijacker.port}",
            "fallback": [backup.url()],
            "api": {"base": tls_bot_api.base},
        }
        async with (
            build_client_session(**settings) as session,
            session.get(f"{tls_bot_api.base}/bot{TOKEN}/getMe", ssl=pin) as response,
        ):
            assert (await response.json())["ok"] is True
            [primary, fallback] = session.connector.route_status()  # type: ignore[union-attr]
    finally:
        hijacker.stop()
        impostor.stop()
    assert hijacker.connections == 1
    assert (primary.state, fallback.state) == ("failed", "active")
    assert "is not the pinned one" in (primary.last_error or "")
    assert len(tls_bot_api.calls) == 1
    assert impostor.calls == []


async def race_a_route_mute_in_tls(
    tls_bot_api: BotApiStandIn, background: BackgroundLoop, url: str, **settings: Any
) -> tuple[RouteStatus, RouteStatus, int]:
    """Send getMe to ``url`` with a primary whose proxy hands every connection to a server that
    never answers (so TLS never ends) and a fallback whose proxy hands it to the stand-in,
    whatever the URL's host; the routes' states after the request, and the primary's port."""
    mute = SilentServer(background).start()
    primary = HijackingSocks5(background, to=mute.port).start()
    fallback = HijackingSocks5(background, to=tls_bot_api.port).start()
    pin = aiohttp.Fingerprint(fingerprint_of(tls_bot_api))
    try:
        routes = {
            "proxy": f"socks5://{LOOPBACK}:{primary.port}",
            "fallback": [f"socks5://{LOOPBACK}:{fallback.port}"],
        }
        async with (
            build_client_session(**routes, **settings) as session,
            session.get(url, ssl=pin) as reply,
        ):
            assert (await reply.json())["ok"] is True
            [first, second] = session.connector.route_status()  # type: ignore[union-attr]
    finally:
        primary.stop()
        fallback.stop()
        mute.stop()
    assert mute.accepted == 1
    assert len(tls_bot_api.calls) == 1
    return first, second, primary.port


@pytest.mark.parametrize(("host", "shown"), [(LOOPBACK, LOOPBACK), ("::1", "[::1]")])
async def test_a_route_whose_tls_with_the_server_stalls_loses_the_hedged_race(
    tls_bot_api: BotApiStandIn,
    background: BackgroundLoop,
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    shown: str,
) -> None:
    """A primary whose tunnel is made but whose TLS handshake with the server never ends loses
    to the fallback at the hedge delay, and its state says which handshake had not finished
    (an IPv6 server in brackets)."""
    monkeypatch.setattr(routing, "FIRST_CHECK_AFTER", PATIENT)  # no check during the test
    url_host = f"[{host}]" if ":" in host else host
    url = f"https://{url_host}:{tls_bot_api.port}/bot{TOKEN}/getMe"
    first, second, _ = await race_a_route_mute_in_tls(
        tls_bot_api, background, url, fallback_hedge_after=0.3
    )
    assert (first.state, second.state) == ("failed", "active")
    assert re.fullmatch(
        rf"no tunnel after \d+\.\d s \(the TLS handshake with {re.escape(shown)}:"
        rf"{tls_bot_api.port} had not finished\); route fallback\[0\] was ready first "
        r"\(fallback_hedge_after: 0\.3 s\)",
        first.last_error or "",
    ), first.last_error


async def test_a_route_stalled_in_tls_is_given_up_for_its_socket_when_limit_is_reached(
    tls_bot_api: BotApiStandIn,
    background: BackgroundLoop,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With limit 1, a primary whose TLS handshake with the server never ends is given up at
    the hedge delay so that the fallback can have the socket; its state names the hop and the
    limit, and the request arrives once."""
    monkeypatch.setattr(routing, "FIRST_CHECK_AFTER", PATIENT)  # no check during the test
    url = f"{tls_bot_api.base}/bot{TOKEN}/getMe"
    first, second, port = await race_a_route_mute_in_tls(
        tls_bot_api, background, url, fallback_hedge_after=0.3, limit=1
    )
    assert (first.state, second.state) == ("failed", "active")
    assert re.fullmatch(
        rf"proxy hop 1 of 1 \(socks5://{LOOPBACK}:{port}\): no tunnel after \d+\.\d s "
        r"\(fallback_hedge_after: 0\.3 s\); given up so that the session holds no more than "
        r"its limit of 1 proxy connections",
        first.last_error or "",
    ), first.last_error
