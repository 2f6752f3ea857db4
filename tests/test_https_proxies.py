"""HTTPS proxies (issue #13): TLS to the proxy, then HTTP CONNECT with Basic credentials inside it.

The proxies here are in-process: an HTTP CONNECT proxy (tiny-proxy) behind ``TlsRelay``, which
plays stunnel, with certificates from the test's own CA (trustme). The same routes through the
real daemons (squid, stunnel in front of tinyproxy) are in ``tests/e2e/test_https_daemons.py``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiogram.exceptions import TelegramNetworkError

from botsession import (
    BotSessionWarning,
    ConfigError,
    ProxyHopError,
    build_client_session,
    load_config,
)
from botsession.config_schema import ProxyHop, ProxyRoute, yaml_json_schema
from botsession.factory import load_config_with_origins

from .conftest import ProxyFactory
from .servers import BackgroundLoop, BotApiStandIn, InProcessProxy, SilentServer, StreamServer
from .support import LATE, LOOPBACK, SENTINEL, TOKEN, free_port, get_me, session_for
from .test_cli import botsession
from .tls_relay import TlsRelay, server_context

CREDENTIALS = base64.b64encode(f"tom:{SENTINEL}".encode()).decode()
"""tom's Basic credentials as they appear in a Proxy-Authorization header."""


@dataclass
class HttpsProxy:
    """An HTTP CONNECT proxy with Basic auth (tom, the sentinel) behind TLS."""

    inner: InProcessProxy
    relay: TlsRelay

    @property
    def port(self) -> int:
        return self.relay.port

    def url(self, *, host: str = LOOPBACK, credentials: bool = True) -> str:
        userinfo = f"tom:{SENTINEL}@" if credentials else ""
        return f"https://{userinfo}{host}:{self.port}"

    def hop(self, ca_file: Path | None, **fields: Any) -> dict[str, Any]:
        """The hop in mapping form, trusting ``ca_file``."""
        return {"url": self.url(), **({"ca_file": ca_file} if ca_file else {}), **fields}


HttpsProxyFactory = Callable[..., HttpsProxy]


@pytest.fixture
def https_proxy(
    background: BackgroundLoop, proxy: ProxyFactory, ca: trustme.CA
) -> Iterator[HttpsProxyFactory]:
    """Start HTTPS proxies: ``https_proxy()`` has a certificate for 127.0.0.1 from the test CA;
    ``https_proxy(context=...)`` another TLS server context."""
    relays: list[TlsRelay] = []

    def start(*, context: Any = None) -> HttpsProxy:
        inner = proxy("http", "tom", SENTINEL)
        relay = TlsRelay(background, inner.port, context or server_context(ca)).start()
        relays.append(relay)
        return HttpsProxy(inner, relay)

    yield start
    for relay in relays:
        relay.stop()


@pytest.fixture
def tap(background: BackgroundLoop) -> Iterator[Callable[[int], TlsRelay]]:
    """Start wire taps: ``tap(port)`` relays raw bytes to ``port`` and records them."""
    taps: list[TlsRelay] = []

    def start(port: int) -> TlsRelay:
        taps.append(TlsRelay(background, port).start())
        return taps[-1]

    yield start
    for started in taps:
        started.stop()


async def fetch(config: dict[str, Any], url: str) -> int:
    """One GET through a plain aiohttp session built from ``config``; the HTTP status."""
    async with build_client_session(**config) as client, client.get(url) as response:
        return response.status


@dataclass
class OneAnswer(StreamServer):
    """Answers the first byte of each connection with ``answer`` and hangs up: a "proxy" that
    does not speak TLS, or refuses it."""

    answer: bytes = b""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(1)
            writer.write(self.answer)
            await writer.drain()
        finally:
            writer.close()


@contextlib.contextmanager
def answering(background: BackgroundLoop, answer: bytes) -> Iterator[int]:
    """The port of a ``OneAnswer`` server, stopped afterwards."""
    server = OneAnswer(background, answer=answer).start()
    try:
        yield server.port
    finally:
        server.stop()


async def failure(config: dict[str, Any], url: str) -> ProxyHopError:
    """The ProxyHopError a GET through ``config`` fails with."""
    with pytest.raises(ProxyHopError) as caught:
        await fetch(config, url)
    return caught.value


# --- routes that work ----------------------------------------------------------------------


async def test_get_me_through_an_https_proxy(
    bot_api: BotApiStandIn, https_proxy: HttpsProxyFactory, ca_file: Path
) -> None:
    """Bot.get_me() goes through an https:// proxy whose CA is given as the hop's ca_file."""
    front = https_proxy()
    me = await get_me(session_for(bot_api, front.hop(ca_file)))
    assert me.username == "standin_bot"
    assert front.relay.accepted == 1
    assert front.inner.destinations == [(LOOPBACK, bot_api.port)]


async def test_the_connect_request_and_its_credentials_travel_inside_tls(
    bot_api: BotApiStandIn,
    https_proxy: HttpsProxyFactory,
    tap: Callable[[int], TlsRelay],
    ca_file: Path,
) -> None:
    """On the wire to an https proxy there is only TLS: no CONNECT, no Proxy-Authorization, no
    credentials; the proxy receives them inside TLS."""
    front = https_proxy()
    wire = tap(front.port)
    hop = {"url": f"https://tom:{SENTINEL}@127.0.0.1:{wire.port}", "ca_file": ca_file}
    await get_me(session_for(bot_api, hop))
    raw = bytes(wire.received)
    assert raw[:1] == b"\x16"  # a TLS handshake record: the ClientHello
    for visible in (b"CONNECT", b"Proxy-Authorization", CREDENTIALS.encode(), SENTINEL.encode()):
        assert visible not in raw
    inside = bytes(front.relay.received)
    assert inside.startswith(f"CONNECT 127.0.0.1:{bot_api.port} HTTP/1.1\r\n".encode())
    assert f"Proxy-Authorization: Basic {CREDENTIALS}\r\n".encode() in inside


async def test_an_https_bot_api_through_an_https_proxy_is_tls_inside_tls(
    tls_bot_api: BotApiStandIn, https_proxy: HttpsProxyFactory, ca_file: Path
) -> None:
    """TLS to the Bot API runs inside the TLS to the proxy; both are verified."""
    front = https_proxy()
    me = await get_me(session_for(tls_bot_api, front.hop(ca_file), ssl={"ca_file": ca_file}))
    assert me.id == 42
    assert front.inner.destinations == [(LOOPBACK, tls_bot_api.port)]


@pytest.mark.parametrize(
    "kinds",
    [
        ("socks5", "https"),
        ("http", "socks5", "https"),
        ("https", "https"),
        ("https", "socks4a", "https"),
    ],
    ids="-".join,
)
async def test_https_hops_anywhere_in_a_chain(
    kinds: tuple[str, ...],
    tls_bot_api: BotApiStandIn,
    proxy: ProxyFactory,
    https_proxy: HttpsProxyFactory,
    ca_file: Path,
) -> None:
    """TLS to hop k runs through the tunnel of hops 1..k-1 (TLS inside TLS inside TLS for two
    https hops and the https Bot API), and every hop carries the request in order."""
    route: list[Any] = []
    carriers: list[InProcessProxy] = []
    for kind in kinds:
        if kind == "https":
            front = https_proxy()
            route.append(front.hop(ca_file))
            carriers.append(front.inner)
        else:
            plain = proxy(kind)
            route.append(plain.url())
            carriers.append(plain)
    session = session_for(tls_bot_api, route, ssl={"ca_file": ca_file})
    assert (await get_me(session)).id == 42
    ports = [*(carrier_port(hop) for hop in route[1:]), tls_bot_api.port]
    for carrier, port in zip(carriers, ports, strict=True):
        assert [destination[1] for destination in carrier.destinations] == [port]


def carrier_port(hop: Any) -> int:
    """The port a hop (URL or mapping) listens on."""
    url = hop["url"] if isinstance(hop, dict) else hop
    return int(url.rsplit(":", 1)[1])


async def test_verify_false_connects_to_an_untrusted_proxy_and_warns(
    bot_api: BotApiStandIn, https_proxy: HttpsProxyFactory
) -> None:
    """verify: false skips the certificate check, with a BotSessionWarning that says so."""
    front = https_proxy(context=server_context(trustme.CA()))
    with pytest.warns(BotSessionWarning) as warned:
        session = session_for(bot_api, front.hop(None, verify=False))
    [warning] = [str(w.message) for w in warned]
    assert warning == (
        f"proxy: hop 1 (https://127.0.0.1:{front.port}) has verify: false, so its TLS certificate "
        "is not checked: anyone on the way can pose as the proxy and take its credentials; give "
        "the proxy's CA as ca_file instead"
    )
    assert (await get_me(session)).id == 42


async def test_httpx_and_python_telegram_bot_go_through_an_https_proxy(
    tls_bot_api: BotApiStandIn, https_proxy: HttpsProxyFactory, ca_file: Path
) -> None:
    """The httpx client and the python-telegram-bot request take the same https hop."""
    from telegram import Bot

    from botsession import build_httpx_client, build_ptb_request

    front = https_proxy()
    settings: dict[str, Any] = {
        "proxy": front.hop(ca_file),
        "api": {"base": tls_bot_api.base},
        "ssl": {"ca_file": ca_file},
    }
    async with build_httpx_client(**settings) as client:
        response = await client.post(f"{tls_bot_api.base}/bot{TOKEN}/getMe")
    assert response.json()["result"]["id"] == 42
    bot = Bot(TOKEN, request=build_ptb_request(**settings), base_url=f"{tls_bot_api.base}/bot")
    async with bot:
        assert (await bot.get_me()).id == 42
    # One tunnel for httpx, one or more for PTB (its pool), all to the Bot API.
    assert len(front.inner.destinations) >= 2
    assert set(front.inner.destinations) == {(LOOPBACK, tls_bot_api.port)}


# --- failures: each a ProxyHopError with reason "tls" naming the hop --------------------------


async def test_a_certificate_from_an_unknown_ca_is_refused_before_any_credentials(
    bot_api: BotApiStandIn, https_proxy: HttpsProxyFactory
) -> None:
    """Without ca_file (certifi's CAs) the test CA is unknown: reason tls, the fix named, and the
    proxy never got a byte of the CONNECT request."""
    front = https_proxy()
    error = await failure({"proxy": front.url()}, f"{bot_api.base}/")
    assert (error.reason, error.hop_number) == ("tls", 1)
    assert str(error) == (
        f"proxy hop 1 of 1 (https://tom:***@127.0.0.1:{front.port}): the proxy's TLS certificate "
        "is not trusted by certifi's CAs (the default) (certificate verify failed: unable to get "
        "local issuer certificate); give the CA that issued it as ca_file for this hop (or "
        "verify: false, which is insecure)"
    )
    assert (front.relay.accepted, bytes(front.relay.received)) == (0, b"")
    assert front.inner.destinations == []


async def test_the_wrong_ca_file_is_named(
    bot_api: BotApiStandIn, https_proxy: HttpsProxyFactory, tmp_path: Path
) -> None:
    """A ca_file holding another CA: the message names that file."""
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    front = https_proxy()
    error = await failure({"proxy": front.hop(other)}, f"{bot_api.base}/")
    assert error.reason == "tls"
    assert f"the proxy's TLS certificate is not trusted by its ca_file {other} (" in error.detail


async def test_an_untrusted_hop_2_is_named_and_aiogram_sees_a_network_error(
    bot_api: BotApiStandIn, proxy: ProxyFactory, https_proxy: HttpsProxyFactory
) -> None:
    """Behind a socks5 hop, the untrusted https hop is hop 2 of 2; aiogram raises its
    TelegramNetworkError with that message, and nothing reaches the Bot API."""
    first = proxy("socks5")
    front = https_proxy()
    with pytest.raises(TelegramNetworkError) as caught:
        await get_me(session_for(bot_api, [first.url(), front.url()]))
    assert (
        f"proxy hop 2 of 2 (https://tom:***@127.0.0.1:{front.port}): the proxy's TLS certificate "
        "is not trusted" in str(caught.value)
    )
    assert SENTINEL not in str(caught.value)
    assert bot_api.calls == []


async def test_tls_failures_inside_tls_keep_their_own_message(
    tls_bot_api: BotApiStandIn, https_proxy: HttpsProxyFactory, ca_file: Path
) -> None:
    """An untrusted hop 2 behind an https hop 1, and an untrusted Bot API behind an https hop,
    fail with their certificate's message (not asyncio's TypeError on Python 3.11 and 3.12)."""
    first, second = https_proxy(), https_proxy(context=server_context(trustme.CA()))
    error = await failure(
        {"proxy": [first.hop(ca_file), second.hop(ca_file)]}, f"{tls_bot_api.base}/"
    )
    assert (error.reason, error.hop_number) == ("tls", 2)
    assert error.detail.startswith(
        f"the proxy's TLS certificate is not trusted by its ca_file {ca_file} (certificate "
        "verify failed: unable to get local issuer certificate)"
    )
    error = await failure({"proxy": first.hop(ca_file)}, f"{tls_bot_api.base}/")
    assert (error.reason, error.hop_number) == ("tls", 1)
    assert error.detail == (
        f"the TLS handshake with 127.0.0.1:{tls_bot_api.port} failed: certificate verify "
        "failed: unable to get local issuer certificate"
    )


async def test_a_ca_file_removed_after_loading_is_reason_tls(
    bot_api: BotApiStandIn, https_proxy: HttpsProxyFactory, ca_file: Path, tmp_path: Path
) -> None:
    """A ca_file that disappeared since the configuration was loaded fails the hop (reason
    tls, naming the file) instead of looking like a network error."""
    copy = tmp_path / "proxy-ca.pem"
    shutil.copyfile(ca_file, copy)
    front = https_proxy()
    async with build_client_session(proxy=front.hop(copy)) as client:
        os.remove(copy)
        with pytest.raises(ProxyHopError) as caught:
            await client.get(f"{bot_api.base}/")
    assert (caught.value.reason, caught.value.detail) == (
        "tls",
        f"cannot load the ca_file {copy} (No such file or directory)",
    )


async def test_a_certificate_for_another_host_name_is_refused(
    bot_api: BotApiStandIn, https_proxy: HttpsProxyFactory, ca: trustme.CA, ca_file: Path
) -> None:
    """The certificate is checked against the host name in the proxy URL (SNI too)."""
    front = https_proxy(context=server_context(ca, "proxy.example"))
    error = await failure({"proxy": front.hop(ca_file)}, f"{bot_api.base}/")
    assert error.reason == "tls"
    assert error.detail == (
        "the proxy's TLS certificate is not valid for 127.0.0.1 (certificate verify failed: "
        "IP address mismatch, certificate is not valid for '127.0.0.1'.); write the proxy with a "
        "host name its certificate lists"
    )
    assert front.inner.destinations == []


@pytest.mark.parametrize(
    ("days", "detail"),
    [
        (
            (-30, -1),
            "the proxy's TLS certificate has expired (certificate verify failed: certificate has "
            "expired); it must be renewed on the proxy (or this machine's clock is wrong)",
        ),
        (
            (2, 30),
            "the proxy's TLS certificate is not valid yet (certificate verify failed: certificate "
            "is not yet valid); check the clocks",
        ),
    ],
    ids=["expired", "not-yet-valid"],
)
async def test_a_certificate_outside_its_validity_is_refused(
    days: tuple[int, int],
    detail: str,
    https_proxy: HttpsProxyFactory,
    ca: trustme.CA,
    ca_file: Path,
) -> None:
    """An expired (or not yet valid) proxy certificate is reason tls, saying which."""
    now = datetime.now(UTC)
    start, end = (now + timedelta(days=day) for day in days)
    front = https_proxy(context=server_context(ca, not_before=start, not_after=end))
    error = await failure({"proxy": front.hop(ca_file)}, f"http://127.0.0.1:{free_port()}/")
    assert front.inner.destinations == []
    assert (error.reason, error.detail) == ("tls", detail)


async def test_a_tls_alert_from_the_proxy_is_reason_tls(
    background: BackgroundLoop, bot_api: BotApiStandIn
) -> None:
    """A proxy that answers the ClientHello with a TLS alert (no common protocol or cipher) is
    reason tls, quoting the alert."""

    alert = bytes.fromhex("15030300020228")  # fatal alert: handshake_failure
    with answering(background, alert) as port:
        error = await failure({"proxy": f"https://127.0.0.1:{port}"}, f"{bot_api.base}/")
    assert (error.reason, error.detail) == (
        "tls",
        "the TLS handshake with the proxy failed (sslv3 alert handshake failure)",
    )


async def test_a_proxy_that_wants_a_client_certificate_says_so(
    bot_api: BotApiStandIn, ca: trustme.CA, ca_file: Path
) -> None:
    """A TLS 1.3 proxy that requires a client certificate alerts after botsession's side of the
    handshake is done; the error is reason tls and says a client certificate is wanted, in
    words rather than OpenSSL's raw text."""
    context = server_context(ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(context)
    listener = socket.create_server((LOOPBACK, 0))
    listener.settimeout(5)

    def refuse_the_client() -> None:
        # Blocking sockets: OpenSSL's alert is on the wire before the handshake error is
        # raised, and a FIN (not an RST, which would discard the alert) follows it.
        connection, _ = listener.accept()
        connection.settimeout(5)
        with context.wrap_socket(
            connection, server_side=True, do_handshake_on_connect=False
        ) as tls:
            with contextlib.suppress(ssl.SSLError, OSError):
                tls.do_handshake()
            with contextlib.suppress(OSError):
                socket.socket.shutdown(tls, socket.SHUT_WR)
                while socket.socket.recv(tls, 4096):  # until botsession hangs up
                    pass

    server = threading.Thread(target=refuse_the_client, daemon=True)
    server.start()
    try:
        hop = {"url": f"https://127.0.0.1:{listener.getsockname()[1]}", "ca_file": ca_file}
        error = await failure({"proxy": hop}, f"{bot_api.base}/")
    finally:
        server.join(10)
        listener.close()
    assert (error.reason, error.hop_number) == ("tls", 1)
    assert error.detail == (
        "the HTTP CONNECT reply failed: tlsv13 alert certificate required (it wants a client "
        "certificate, which botsession does not send)"
    )


async def test_a_plain_http_proxy_written_as_https_says_it_does_not_speak_tls(
    background: BackgroundLoop, bot_api: BotApiStandIn
) -> None:
    """A proxy that answers the TLS ClientHello in plain HTTP (as squid's http_port does) is
    reason tls, quoting its answer and naming http://."""

    with answering(background, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") as port:
        error = await failure({"proxy": f"https://127.0.0.1:{port}"}, f"{bot_api.base}/")
    assert error.reason == "tls"
    assert error.detail == (
        "the TLS handshake with the proxy failed (wrong version number): it answered the "
        "ClientHello with 'HTTP/1.1 400 Bad Request', like an HTTP proxy: is its scheme http:// "
        "rather than https://?"
    )


async def test_a_proxy_that_hangs_up_on_tls_is_reason_tls(
    background: BackgroundLoop, bot_api: BotApiStandIn
) -> None:
    """A server that closes the connection at the ClientHello is reason tls, not closed."""
    hangs_up = SilentServer(background, hang_up=True).start()
    try:
        error = await failure({"proxy": f"https://127.0.0.1:{hangs_up.port}"}, f"{bot_api.base}/")
    finally:
        hangs_up.stop()
    assert error.reason == "tls"
    assert error.detail.startswith(
        "the proxy closed the connection during the TLS handshake; is it a TLS (https://) proxy?"
    )


async def test_a_silent_https_proxy_fails_within_connect_timeout(
    bot_api: BotApiStandIn, silent_server: SilentServer
) -> None:
    """A proxy that never answers the ClientHello costs connect_timeout, no more, and is
    asked about as an HTTP proxy would be (which waits, silent, for a request line)."""
    started = time.monotonic()
    error = await failure(
        {"proxy": f"https://127.0.0.1:{silent_server.port}", "connect_timeout": 0.5},
        f"{bot_api.base}/",
    )
    assert 0.45 < time.monotonic() - started < 0.5 + LATE
    assert (error.reason, error.detail) == (
        "timeout",
        "no answer within the 0.5 s connect timeout (waiting for the TLS handshake with the "
        "proxy); it accepted the connection but said nothing to the TLS ClientHello, as an HTTP "
        "proxy does (it waits for a request line): is its scheme http:// rather than https://?",
    )


async def test_a_tls_failure_falls_back_to_the_next_route(
    bot_api: BotApiStandIn,
    https_proxy: HttpsProxyFactory,
    proxy: ProxyFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An untrusted https primary is a connect failure like any other: the fallback serves."""
    front = https_proxy()
    backup = proxy("socks5")
    me = await get_me(session_for(bot_api, front.url(), fallback=[backup.url()]))
    assert me.id == 42
    assert backup.destinations == [(LOOPBACK, bot_api.port)]
    [switch] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "the proxy's TLS certificate is not trusted" in switch
    assert switch.endswith(f"switched to route fallback[0] (socks5://127.0.0.1:{backup.port})")
    assert SENTINEL not in caplog.text


async def test_an_https_fallback_route_serves(
    bot_api: BotApiStandIn, https_proxy: HttpsProxyFactory, ca_file: Path
) -> None:
    """An https hop works in a fallback route too."""
    front = https_proxy()
    dead = f"socks5://127.0.0.1:{free_port()}"
    session = session_for(bot_api, dead, fallback=[[front.hop(ca_file)]])
    assert (await get_me(session)).id == 42
    assert front.inner.destinations == [(LOOPBACK, bot_api.port)]


# --- configuration ---------------------------------------------------------------------------


def test_https_hop_fields(ca_file: Path) -> None:
    """An https hop keeps its ca_file and verify; repr, str and describe mark TLS, never the
    password."""
    route = ProxyRoute.model_validate(
        [
            {"url": f"https://tom:{SENTINEL}@proxy.example:443", "ca_file": str(ca_file)},
            {"url": "https://relay.example:8443", "verify": False},
        ]
    )
    first, second = route
    assert (first.scheme, first.tls, first.ca_file, first.verify, first.rdns) == (
        "https",
        True,
        ca_file,
        True,
        True,
    )
    assert repr(first) == f"ProxyHop('https://tom:***@proxy.example:443', ca_file={str(ca_file)!r})"
    assert repr(second) == "ProxyHop('https://relay.example:8443', verify=False)"
    assert route.describe("api.telegram.org") == (
        "client → https proxy.example:443 (TLS, auth) → https relay.example:8443 "
        "(TLS not verified) → api.telegram.org"
    )
    assert SENTINEL not in repr(route) + str(route)


@pytest.mark.parametrize(
    ("hop", "message"),
    [
        (
            {"url": "socks5://127.0.0.1:1080", "ca_file": "{ca}"},
            "proxy.ca_file: ca_file applies to https:// proxies only (TLS to the proxy)",
        ),
        (
            {"url": "http://127.0.0.1:3128", "verify": False},
            "proxy.verify: verify applies to https:// proxies only (TLS to the proxy)",
        ),
        (
            {"url": "https://127.0.0.1:443", "ca_file": "{ca}", "verify": False},
            "proxy.ca_file: ca_file has no effect when verify is false",
        ),
        (
            {"url": "https://127.0.0.1:443", "ca_file": "bot.yaml"},
            "proxy.ca_file: not a PEM file of CA certificates (NO_CERTIFICATE_OR_CRL_FOUND)",
        ),
        (
            {"url": "https://127.0.0.1:443", "ca_file": "missing.pem"},
            "proxy.ca_file: Path does not point to a file",
        ),
        (
            {"url": "https://127.0.0.1:443", "rdns": False},
            "proxy.rdns: an https proxy always resolves the target itself",
        ),
        (
            {"url": "https://a:b@127.0.0.1:443", "username": "a:b"},
            "proxy.username: an https proxy user name cannot contain ':'",
        ),
    ],
    ids=[
        "ca_file-on-socks5",
        "verify-on-http",
        "ca_file-unverified",
        "not-pem",
        "missing",
        "rdns",
        "colon",
    ],
)
def test_tls_settings_are_checked_at_load(
    hop: dict[str, Any], message: str, ca_file: Path, tmp_path: Path
) -> None:
    """ca_file and verify belong to https hops; a ca_file must hold CAs (located errors)."""
    fields = {key: str(value).replace("{ca}", str(ca_file)) for key, value in hop.items()}
    (tmp_path / "bot.yaml").write_text(
        "proxy:\n"
        + "".join(
            f"  {key}: {json.dumps(value) if key != 'verify' else value.lower()}\n"
            for key, value in fields.items()
        )
    )
    with pytest.raises(ConfigError) as caught:
        load_config("bot.yaml")
    [problem] = caught.value.problems
    assert str(problem).startswith("bot.yaml:")
    assert f"{problem.path}: {problem.message}".startswith(message)


def test_ca_file_is_relative_to_the_yaml_file(tmp_path: Path, ca_file: Path) -> None:
    """A relative ca_file in bot.yaml is found beside the file, wherever the bot runs."""
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "proxy-ca.pem").write_bytes(ca_file.read_bytes())
    (folder / "bot.yaml").write_text(
        "proxy:\n  url: https://proxy.example:443\n  ca_file: proxy-ca.pem\n"
    )
    route = load_config(folder / "bot.yaml").proxy
    assert route is not None
    assert route[0].ca_file == folder / "proxy-ca.pem"


async def test_bot_proxy_and_its_ca_file_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    bot_api: BotApiStandIn,
    https_proxy: HttpsProxyFactory,
    ca_file: Path,
) -> None:
    """BOT_PROXY=https://… plus BOT_PROXY__CA_FILE reach the proxy."""
    front = https_proxy()
    monkeypatch.setenv("BOT_PROXY", front.url())
    monkeypatch.setenv("BOT_PROXY__CA_FILE", str(ca_file))
    monkeypatch.setenv("BOT_API__BASE", bot_api.base)
    assert await fetch({}, f"{bot_api.base}/bot{TOKEN}/getMe") == 200
    assert front.inner.destinations == [(LOOPBACK, bot_api.port)]


async def test_trust_env_takes_an_https_proxy_from_https_proxy(
    monkeypatch: pytest.MonkeyPatch,
    tls_bot_api: BotApiStandIn,
    https_proxy: HttpsProxyFactory,
    ca_file: Path,
) -> None:
    """With trust_env, HTTPS_PROXY=https://… is used (aiohttp's own trust_env ignores it), and
    BOT_PROXY__CA_FILE completes it with the proxy's CA."""
    for name in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    front = https_proxy()
    monkeypatch.setenv("HTTPS_PROXY", front.url())
    monkeypatch.setenv("BOT_PROXY__CA_FILE", str(ca_file))
    loaded = load_config_with_origins(
        trust_env=True, api={"base": tls_bot_api.base}, ssl={"ca_file": ca_file}
    )
    assert str(loaded.config.proxy) == f"https://tom:***@127.0.0.1:{front.port}"
    assert loaded.origin_of(("proxy",)).label == "environment variable HTTPS_PROXY (trust_env)"
    status = await fetch(
        {"trust_env": True, "api": {"base": tls_bot_api.base}, "ssl": {"ca_file": ca_file}},
        f"{tls_bot_api.base}/bot{TOKEN}/getMe",
    )
    assert status == 200
    assert front.inner.destinations == [(LOOPBACK, tls_bot_api.port)]


def test_an_https_hop_in_a_profile(tmp_path: Path, ca_file: Path) -> None:
    """Profiles take https hops with their TLS fields like any other hop."""
    (tmp_path / "bot.yaml").write_text(
        "profiles:\n"
        "  office:\n"
        "    proxy:\n"
        "      - socks5://127.0.0.1:1080\n"
        f"      - url: https://proxy.example:443\n        ca_file: {ca_file}\n"
    )
    route = load_config("bot.yaml", profile="office").proxy
    assert route is not None
    assert [(hop.scheme, hop.ca_file) for hop in route] == [("socks5", None), ("https", ca_file)]


def test_the_json_schema_describes_the_tls_fields() -> None:
    """bot.yaml's JSON Schema offers ca_file and verify on a hop, and https among the schemes."""
    schema = yaml_json_schema()
    url, mapping, _chain = schema["$defs"]["ProxyRoute"]["anyOf"]
    assert {"ca_file", "verify"} <= set(mapping["properties"])
    assert "https" in url["description"]
    assert "verify" in mapping["properties"]["verify"]["description"] or True
    assert mapping["properties"]["ca_file"]["description"].startswith("https proxies only")


# --- check, show, probe ----------------------------------------------------------------------


def test_check_and_show_mark_tls_hops(tmp_path: Path, ca_file: Path) -> None:
    """check's route line and show's rows mark the https hops and how they are verified."""
    (tmp_path / "bot.yaml").write_text(
        "proxy:\n"
        f"  - url: https://tom:{SENTINEL}@proxy.example:443\n    ca_file: {ca_file}\n"
        "  - url: https://relay.example:8443\n    verify: false\n"
    )
    check = botsession("check", "bot.yaml")
    assert check.returncode == 0
    assert (
        "client → https proxy.example:443 (TLS, auth) → https relay.example:8443 (TLS not "
        "verified) → api.telegram.org" in check.stdout
    )
    assert check.stderr.startswith(
        "warning: proxy: hop 2 (https://relay.example:8443) has verify: false"
    )
    show = botsession("show", "bot.yaml")
    rows = [" ".join(line.split()) for line in show.stdout.splitlines()]
    assert (
        f"proxy[0] https://tom:***@proxy.example:443 (TLS, ca_file {ca_file}) bot.yaml:2:5" in rows
    )
    assert "proxy[1] https://relay.example:8443 (TLS not verified) bot.yaml:4:5" in rows
    hops = json.loads(botsession("show", "--json", "bot.yaml").stdout)["proxy"]
    assert [hop["tls"] for hop in hops] == [
        {"verify": True, "ca_file": str(ca_file)},
        {"verify": False, "ca_file": None},
    ]
    assert SENTINEL not in check.stdout + check.stderr + show.stdout + show.stderr


def test_probe_reports_each_tls_hop(
    bot_api: BotApiStandIn,
    https_proxy: HttpsProxyFactory,
    proxy: ProxyFactory,
    ca: trustme.CA,
    ca_file: Path,
) -> None:
    """probe says, for each https hop, its TLS version, the certificate's subject, issuer and
    expiry; nothing is said for other hops and nothing warns for a certificate valid a year."""
    expiry = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=400)
    first = https_proxy(context=server_context(ca, "127.0.0.1", not_after=expiry))
    middle = proxy("socks5")
    route = [first.hop(str(ca_file)), middle.url()]
    result = botsession(
        "probe", env={"BOT_PROXY": json.dumps(route), "BOT_API__BASE": bot_api.base}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"probing client → https 127.0.0.1:{first.port} (TLS, auth) → socks5 "
        f"127.0.0.1:{middle.port} → {bot_api.base}"
    )
    assert lines[1].startswith(f"[1/3] hop 1 https://tom:***@127.0.0.1:{first.port} → hop 2 ")
    issuer = certificate_issuer(ca)
    assert re.fullmatch(
        r"      TLSv1\.3 with 127\.0\.0\.1, certificate verified: "
        r"subject OU=Testing cert #\S+, O=trustme v[\d.]+; "
        rf"issuer {re.escape(issuer)}; expires {expiry:%Y-%m-%d %H:%M} UTC \(in 399 days\)",
        lines[2],
    ), lines[2]
    assert lines[3].startswith(f"[2/3] hop 2 socks5://127.0.0.1:{middle.port} → ")
    assert lines[4].startswith("[3/3] GET")
    assert result.stderr == ""
    assert SENTINEL not in result.stdout


def certificate_issuer(ca: trustme.CA) -> str:
    """The issuer probe shows for a certificate of ``ca``: its subject, most specific first."""
    from cryptography import x509

    name = x509.load_pem_x509_certificate(ca.cert_pem.bytes()).subject
    return ", ".join(
        f"{part.rfc4514_attribute_name}={part.value!s}" for part in reversed(list(name))
    )


def test_probe_warns_when_a_proxy_certificate_expires_soon(
    bot_api: BotApiStandIn, https_proxy: HttpsProxyFactory, ca: trustme.CA, ca_file: Path
) -> None:
    """A certificate that expires within 14 days is a warning on stderr; probe still exits 0."""
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5, hours=1)
    front = https_proxy(context=server_context(ca, not_after=soon))
    hop = front.hop(str(ca_file))
    result = botsession("probe", env={"BOT_PROXY": json.dumps(hop), "BOT_API__BASE": bot_api.base})
    assert result.returncode == 0
    assert f"expires {soon:%Y-%m-%d %H:%M} UTC (in 5 days)" in result.stdout.splitlines()[2]
    assert result.stderr == (
        f"warning: the TLS certificate of hop 1 (https://tom:***@127.0.0.1:{front.port}) expires "
        f"in 5 days ({soon:%Y-%m-%d %H:%M} UTC); renew it on the proxy\n"
    )


def test_probe_names_an_untrusted_hop(
    bot_api: BotApiStandIn, proxy: ProxyFactory, https_proxy: HttpsProxyFactory
) -> None:
    """probe fails at the https hop whose certificate is not trusted, with the reason."""
    first = proxy("socks5")
    front = https_proxy()
    route = [first.url(), front.url()]
    result = botsession(
        "probe", env={"BOT_PROXY": json.dumps(route), "BOT_API__BASE": bot_api.base}
    )
    assert result.returncode == 3
    assert "FAILED" in result.stdout.splitlines()[2]
    assert result.stderr.startswith(
        f"probe failed: hop 2 of 2 (https://tom:***@127.0.0.1:{front.port}): the proxy's TLS "
        "certificate is not trusted by certifi's CAs"
    )


def test_probe_shows_an_unverified_certificate_too(
    bot_api: BotApiStandIn, https_proxy: HttpsProxyFactory
) -> None:
    """With verify: false probe still shows what certificate the proxy presented, marked as not
    verified."""
    front = https_proxy(context=server_context(trustme.CA()))
    hop = front.hop(None, verify=False)
    result = botsession("probe", env={"BOT_PROXY": json.dumps(hop), "BOT_API__BASE": bot_api.base})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2].startswith(
        "      TLSv1.3 with 127.0.0.1, certificate NOT verified (verify: false): subject OU=Testing cert #"
    )


def test_a_proxy_hop_is_https_only_with_tls_fields() -> None:
    """A canonical hop given directly with TLS settings but another scheme is refused."""
    with pytest.raises(
        ValueError, match=r"verify applies to https:// proxies only \(TLS to the proxy\)"
    ):
        ProxyHop.model_validate(
            {"scheme": "http", "host": "127.0.0.1", "port": 1, "rdns": True, "verify": False}
        )
