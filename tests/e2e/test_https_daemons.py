"""HTTPS proxies end to end (issue #13): squid's https_port and stunnel in front of tinyproxy,
with certificates from the test's CA, as a single hop and as hop 2 and hop 3 of mixed chains,
and refused for a wrong CA, a wrong host name and an expired certificate.

Under CI (any non-empty CI but 0/false) a missing daemon fails these tests; elsewhere they are
skipped with the reason.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from aiogram.exceptions import TelegramNetworkError

from botsession import ProxyHopError, build_client_session

from ..servers import BotApiStandIn
from ..support import SENTINEL, TOKEN, get_me, session_for
from ..test_cli import botsession
from . import tls_daemons
from .daemons import RunningProxy
from .tls_daemons import TlsProxy

pytestmark = pytest.mark.daemons


@pytest.fixture(scope="session")
def squid(proxy_certificates: dict[str, tls_daemons.Certificate]) -> Iterator[TlsProxy]:
    """squid with an https_port (certificate for 127.0.0.1) and Basic auth (tom, the sentinel)."""
    with tls_daemons.squid("tom", SENTINEL, proxy_certificates["good"]) as running:
        yield running


def _stunnel(
    tmp_path_factory: pytest.TempPathFactory,
    tiny: RunningProxy,
    certificate: tls_daemons.Certificate,
) -> Iterator[TlsProxy]:
    with tls_daemons.stunnel(tmp_path_factory.mktemp("stunnel"), tiny, certificate) as running:
        yield running


@pytest.fixture(scope="session")
def stunnel_other_host(
    tmp_path_factory: pytest.TempPathFactory,
    tiny: RunningProxy,
    proxy_certificates: dict[str, tls_daemons.Certificate],
) -> Iterator[TlsProxy]:
    """stunnel whose certificate is for proxy.example only."""
    yield from _stunnel(tmp_path_factory, tiny, proxy_certificates["other-host"])


@pytest.fixture(scope="session")
def stunnel_expired(
    tmp_path_factory: pytest.TempPathFactory,
    tiny: RunningProxy,
    proxy_certificates: dict[str, tls_daemons.Certificate],
) -> Iterator[TlsProxy]:
    """stunnel whose certificate expired yesterday."""
    yield from _stunnel(tmp_path_factory, tiny, proxy_certificates["expired"])


class Watch:
    """The destinations a proxy logs from now on (the daemons are shared by all tests)."""

    def __init__(self, daemon: RunningProxy | TlsProxy) -> None:
        self.daemon = daemon
        self.before = len(daemon.destinations())

    def new(self, expect_port: int | None = None) -> list[tuple[str, int]]:
        if expect_port is not None:
            self.daemon.wait_for_destination(expect_port)
        return self.daemon.destinations()[self.before :]


async def failure(proxy: object, url: str) -> ProxyHopError:
    """The ProxyHopError a GET through ``proxy`` fails with."""
    with pytest.raises(ProxyHopError) as caught:
        async with build_client_session(proxy=proxy, connect_timeout=5) as client:
            await client.get(url)
    return caught.value


async def new_log_lines(proxy: TlsProxy, before: str, timeout: float = 5.0) -> list[str]:
    """The lines logged after ``before``, once there are any (squid logs a connection when it
    ends), within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        text = proxy.log_path.read_text() if proxy.log_path.exists() else ""
        if text[len(before) :].strip() or time.monotonic() > deadline:
            return text[len(before) :].splitlines()
        await asyncio.sleep(0.05)


# --- single hop --------------------------------------------------------------------------


async def test_get_me_through_squid_https_port(
    tls_bot_api: BotApiStandIn, squid: TlsProxy, ca_file: Path
) -> None:
    """Bot.get_me() through squid's https_port, authenticated as tom, TLS inside TLS to the
    https Bot API; squid's log shows the tunnel."""
    watch = Watch(squid)
    session = session_for(tls_bot_api, squid.hop(ca_file), ssl={"ca_file": ca_file})
    assert (await get_me(session)).username == "standin_bot"
    assert watch.new(tls_bot_api.port) == [("127.0.0.1", tls_bot_api.port)]
    text = squid.log_path.read_text()
    assert f"CONNECT 127.0.0.1:{tls_bot_api.port} tom " in text


async def test_get_me_through_stunnel_in_front_of_tinyproxy(
    bot_api: BotApiStandIn, stunnel: TlsProxy, ca_file: Path
) -> None:
    """stunnel + tinyproxy is an HTTPS proxy; tinyproxy checks the Basic credentials sent
    inside TLS and connects to the Bot API."""
    watch = Watch(stunnel)
    assert (await get_me(session_for(bot_api, stunnel.hop(ca_file)))).id == 42
    assert watch.new(bot_api.port) == [("127.0.0.1", bot_api.port)]


async def test_a_wrong_password_at_squid_is_reason_auth(
    bot_api: BotApiStandIn, squid: TlsProxy, ca_file: Path
) -> None:
    """Credentials squid rejects (inside TLS) are reason auth at that hop, password masked."""
    hop = {"url": squid.url(password="not-the-password"), "ca_file": str(ca_file)}
    error = await failure(hop, f"{bot_api.base}/")
    assert (error.reason, error.hop_number, error.code) == ("auth", 1, 407)
    assert "not-the-password" not in str(error)


# --- chains ------------------------------------------------------------------------------


async def test_squid_as_hop_2_behind_dante(
    tls_bot_api: BotApiStandIn, dante: RunningProxy, squid: TlsProxy, ca_file: Path
) -> None:
    """danted (socks5) → squid (https): TLS to squid runs through Dante's tunnel, then TLS to
    the Bot API inside squid's."""
    first, second = Watch(dante), Watch(squid)
    route = [dante.url("socks5"), squid.hop(ca_file)]
    session = session_for(tls_bot_api, route, ssl={"ca_file": ca_file})
    assert (await get_me(session)).id == 42
    assert first.new(squid.port) == [("127.0.0.1", squid.port)]
    assert second.new(tls_bot_api.port) == [("127.0.0.1", tls_bot_api.port)]


async def test_stunnel_as_hop_3_of_a_mixed_chain(
    tls_bot_api: BotApiStandIn,
    micro: RunningProxy,
    ssh_proxy: RunningProxy,
    stunnel: TlsProxy,
    ca_file: Path,
) -> None:
    """microsocks (socks5 + auth) → ssh -D (socks4a) → stunnel/tinyproxy (https) → Bot API."""
    watches = [Watch(micro), Watch(ssh_proxy), Watch(stunnel)]
    route = [micro.url("socks5"), ssh_proxy.url("socks4a"), stunnel.hop(ca_file)]
    session = session_for(tls_bot_api, route, ssl={"ca_file": ca_file})
    assert (await get_me(session)).id == 42
    assert watches[0].new(ssh_proxy.port) == [("127.0.0.1", ssh_proxy.port)]
    assert watches[1].new(stunnel.port) == [("127.0.0.1", stunnel.port)]
    assert watches[2].new(tls_bot_api.port) == [("127.0.0.1", tls_bot_api.port)]


async def test_two_https_hops_around_a_socks_hop(
    tls_bot_api: BotApiStandIn,
    squid: TlsProxy,
    dante: RunningProxy,
    stunnel: TlsProxy,
    ca_file: Path,
) -> None:
    """squid (https) → danted (socks5) → stunnel (https) → https Bot API: TLS inside TLS inside
    TLS, each hop carrying the request to the next."""
    watches = [Watch(squid), Watch(dante), Watch(stunnel)]
    route = [squid.hop(ca_file), dante.url("socks5"), stunnel.hop(ca_file)]
    session = session_for(tls_bot_api, route, ssl={"ca_file": ca_file})
    assert (await get_me(session)).id == 42
    assert watches[1].new(stunnel.port) == [("127.0.0.1", stunnel.port)]
    assert watches[2].new(tls_bot_api.port) == [("127.0.0.1", tls_bot_api.port)]
    assert watches[0].new(dante.port) == [("127.0.0.1", dante.port)]


# --- certificates refused ------------------------------------------------------------------


async def test_a_wrong_ca_is_refused_before_squid_sees_a_request(
    bot_api: BotApiStandIn, squid: TlsProxy, tmp_path: Path
) -> None:
    """With another CA as ca_file, squid's certificate is refused (reason tls, hop named) and
    squid logs no request (only a connection that ended before any): the credentials were never
    sent."""
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    before = squid.log_path.read_text() if squid.log_path.exists() else ""
    error = await failure(squid.hop(other), f"{bot_api.base}/")
    assert (error.reason, error.hop_number) == ("tls", 1)
    assert str(error).startswith(
        f"proxy hop 1 of 1 (https://tom:***@127.0.0.1:{squid.port}): the proxy's TLS "
        f"certificate is not trusted by its ca_file {other} (certificate verify failed: unable "
        "to get local issuer certificate)"
    )
    new = await new_log_lines(squid, before)
    assert [line.split()[3:7] for line in new] == [
        ["NONE_NONE/000", "0", "-", "error:transaction-end-before-headers"]
    ]


async def test_a_certificate_for_another_host_is_refused_at_hop_2(
    bot_api: BotApiStandIn, dante: RunningProxy, stunnel_other_host: TlsProxy, ca_file: Path
) -> None:
    """Behind Dante, stunnel's certificate for proxy.example does not match 127.0.0.1: hop 2,
    reason tls; aiogram sees TelegramNetworkError with that message."""
    route = [dante.url("socks5"), stunnel_other_host.hop(ca_file)]
    with pytest.raises(TelegramNetworkError) as caught:
        await get_me(session_for(bot_api, route))
    assert (
        f"proxy hop 2 of 2 (https://tom:***@127.0.0.1:{stunnel_other_host.port}): the proxy's "
        "TLS certificate is not valid for 127.0.0.1 (certificate verify failed: IP address "
        "mismatch" in str(caught.value)
    )
    assert SENTINEL not in str(caught.value)


async def test_an_expired_certificate_is_refused_and_the_fallback_serves(
    bot_api: BotApiStandIn, stunnel_expired: TlsProxy, squid: TlsProxy, ca_file: Path
) -> None:
    """stunnel's expired certificate fails the primary route with reason tls; the squid
    fallback carries the request."""
    error = await failure(stunnel_expired.hop(ca_file), f"{bot_api.base}/")
    assert error.reason == "tls"
    assert error.detail.startswith(
        "the proxy's TLS certificate has expired (certificate verify failed: certificate has "
        "expired)"
    )
    watch = Watch(squid)
    session = session_for(bot_api, stunnel_expired.hop(ca_file), fallback=[squid.hop(ca_file)])
    assert (await get_me(session)).id == 42
    assert watch.new(bot_api.port) == [("127.0.0.1", bot_api.port)]


async def test_squid_http_port_given_as_https_does_not_speak_tls(
    bot_api: BotApiStandIn, squid: TlsProxy
) -> None:
    """squid's plain http_port answers the ClientHello in HTTP: reason tls, and http:// named."""
    error = await failure(f"https://127.0.0.1:{squid.plain_port}", f"{bot_api.base}/")
    assert error.reason == "tls"
    assert error.detail.endswith("like an HTTP proxy: is its scheme http:// rather than https://?")


# --- probe -------------------------------------------------------------------------------


def test_probe_shows_the_certificates_of_both_https_hops(
    bot_api: BotApiStandIn, squid: TlsProxy, stunnel: TlsProxy, ca_file: Path
) -> None:
    """probe through squid → stunnel reports each hop's TLS version and certificate, and
    exits 0."""
    route = [squid.hop(ca_file), stunnel.hop(ca_file)]
    env = {"BOT_PROXY": json.dumps(route), "BOT_API__BASE": bot_api.base}
    result = botsession("probe", "--url", f"{bot_api.base}/bot{TOKEN}/getMe", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        f"probing client → https 127.0.0.1:{squid.port} (TLS, auth) → https "
        f"127.0.0.1:{stunnel.port} (TLS, auth) → "
    )
    for line in (lines[2], lines[4]):
        assert line.startswith("      TLSv1.3 with 127.0.0.1, certificate verified: subject ")
        assert "; issuer OU=Testing CA #" in line
    assert lines[-1] == "route ok"
    assert SENTINEL not in result.stdout + result.stderr
