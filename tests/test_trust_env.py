"""trust_env: the standard proxy variables (HTTPS_PROXY & co.), read as curl reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from botsession import ConfigError, build_session_from_config, load_config
from botsession.factory import load_config_with_origins
from botsession.sources.standard_proxies import proxy_from_environment

from .conftest import ProxyFactory
from .servers import BotApiStandIn
from .support import get_me

PROXY_VARIABLES = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
)


@pytest.fixture(autouse=True)
def _no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_proxy_variables_are_ignored_without_trust_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """By default HTTPS_PROXY and friends change nothing."""
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    assert load_config().proxy is None


def test_trust_env_takes_https_proxy_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """With trust_env, HTTPS_PROXY becomes the route and its origin names the variable."""
    monkeypatch.setenv("HTTPS_PROXY", "socks5://u:pw@127.0.0.1:1080")
    loaded = load_config_with_origins(trust_env=True)
    assert str(loaded.config.proxy) == "socks5://u:***@127.0.0.1:1080"
    assert loaded.origin_of(("proxy",)).label == "environment variable HTTPS_PROXY (trust_env)"


@pytest.mark.parametrize(
    ("variables", "api_base", "expected"),
    [
        (
            {"https_proxy": "http://a:1", "HTTPS_PROXY": "http://b:2"},
            "https://api.telegram.org",
            ("http://a:1", "https_proxy"),
        ),
        (
            {"HTTPS_PROXY": "b:2", "ALL_PROXY": "socks5://c:3"},
            "https://api.telegram.org",
            ("http://b:2", "HTTPS_PROXY"),
        ),
        (
            {"ALL_PROXY": "socks5h://c:3", "HTTP_PROXY": "http://h:4"},
            "https://api.telegram.org",
            ("socks5h://c:3", "ALL_PROXY"),
        ),
        (
            {"HTTP_PROXY": "http://h:4", "HTTPS_PROXY": "http://s:5"},
            "http://127.0.0.1:8081",
            ("http://h:4", "HTTP_PROXY"),
        ),
        (
            {"all_proxy": "socks5://l:6", "ALL_PROXY": "socks5://u:7"},
            "http://x",
            ("socks5://l:6", "all_proxy"),
        ),
        (
            {"HTTPS_PROXY": "http://a:1", "NO_PROXY": "telegram.org"},
            "https://api.telegram.org",
            None,
        ),
        (
            {"HTTPS_PROXY": "http://a:1", "no_proxy": ".telegram.org"},
            "https://api.telegram.org",
            None,
        ),
        (
            {"HTTPS_PROXY": "http://a:1", "NO_PROXY": "localhost, *"},
            "https://api.telegram.org",
            None,
        ),
        ({"HTTP_PROXY": "http://a:1", "NO_PROXY": "10.0.0.0/8"}, "http://10.1.2.3:8081", None),
        ({"HTTP_PROXY": "http://a:1", "NO_PROXY": "127.0.0.1:8081"}, "http://127.0.0.1:8081", None),
        (
            {"HTTPS_PROXY": "http://a:1", "NO_PROXY": "elegram.org,example.com"},
            "https://api.telegram.org",
            ("http://a:1", "HTTPS_PROXY"),
        ),
        ({}, "https://api.telegram.org", None),
        (
            {"HTTPS_PROXY": "http://a:1", "NO_PROXY": "xn--strae-oqa.de"},
            "https://Straße.de",
            None,
        ),
        (
            {"HTTPS_PROXY": "http://a:1", "NO_PROXY": "straße.de"},
            "https://api.xn--strae-oqa.de",
            None,
        ),
        ({"HTTP_PROXY": "http://a:1", "NO_PROXY": "[::1]:8081"}, "http://[0::1]:8081", None),
        ({"HTTP_PROXY": "http://a:1", "NO_PROXY": "[::1]"}, "http://[::1]:8081", None),
    ],
)
def test_variables_are_read_as_curl_reads_them(
    variables: dict[str, str], api_base: str, expected: tuple[str, str] | None
) -> None:
    """Scheme-specific before ALL_PROXY, lower case before upper case, NO_PROXY honoured."""
    assert proxy_from_environment(variables, api_base) == expected


def test_a_broken_api_base_with_trust_env_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An api.base that is not a URL at all is reported, not a ValueError from urlsplit."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    with pytest.raises(ConfigError) as caught:
        load_config(trust_env=True, api={"base": "http://[::1"})
    assert [str(problem) for problem in caught.value.problems] == [
        "keyword argument api=: api.base: the IPv6 address in the base URL has no closing ']'"
    ]


def test_configured_proxy_always_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A proxy from YAML, or an explicit BOT_PROXY=null, beats the standard variables."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    (tmp_path / "bot.yaml").write_text("trust_env: true\nproxy: socks5://127.0.0.1:1080\n")
    assert str(load_config().proxy) == "socks5://127.0.0.1:1080"
    monkeypatch.setenv("BOT_PROXY", "null")
    assert load_config().proxy is None


def test_trust_env_honours_no_proxy_for_the_api_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_PROXY naming the Bot API host means a direct connection."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert load_config(trust_env=True, api={"base": "http://127.0.0.1:8081"}).proxy is None


def test_bad_proxy_variable_is_reported_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed HTTPS_PROXY is a ConfigError naming that variable."""
    monkeypatch.setenv("HTTPS_PROXY", "ftp://127.0.0.1:21")
    with pytest.raises(
        ConfigError,
        match=r"environment variable HTTPS_PROXY \(trust_env\): proxy: unsupported protocol 'ftp'",
    ):
        load_config(trust_env="yes")


async def test_requests_go_through_the_proxy_from_http_proxy(
    bot_api: BotApiStandIn, proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real getMe travels through the proxy named by HTTP_PROXY."""
    server = proxy("http")
    monkeypatch.setenv("http_proxy", server.url())
    monkeypatch.setenv("BOT_TRUST_ENV", "true")
    await get_me(build_session_from_config(api={"base": bot_api.base}))
    assert server.destinations == [("127.0.0.1", bot_api.port)]
