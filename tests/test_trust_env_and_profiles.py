"""trust_env (standard proxy variables) and named profiles in one YAML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from botsession import ConfigError, build_session_from_config, load_config
from botsession.factory import load_config_with_origins
from botsession.sources.standard_proxies import proxy_from_environment

from .conftest import ProxyFactory
from .helpers import get_me
from .servers import BotApiStandIn

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


# --- trust_env -----------------------------------------------------------------------------


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


# --- profiles ------------------------------------------------------------------------------

PROFILES_YAML = """\
timeout: 30
limit: 10
default_profile: main
profiles:
  main:
    proxy: socks5://127.0.0.1:1080
  backup:
    proxy:
      - socks5://127.0.0.1:1081
      - url: http://bob@127.0.0.1:3128
        password: ${BACKUP_PASSWORD:-pw}
    limit: 20
    api:
      base: http://127.0.0.1:8081
"""


@pytest.fixture
def profiles_file(tmp_path: Path) -> Path:
    path = tmp_path / "bot.yaml"
    path.write_text(PROFILES_YAML)
    return path


def test_default_profile_is_laid_over_the_shared_keys(profiles_file: Path) -> None:
    """default_profile picks a profile; keys outside profiles are shared defaults."""
    loaded = load_config_with_origins()
    config = loaded.config
    assert (str(config.proxy), config.timeout, config.limit) == ("socks5://127.0.0.1:1080", 30, 10)
    assert loaded.stack.profile == "main"
    assert loaded.origin_of(("proxy",)).label == "bot.yaml:6:12"
    assert loaded.origin_of(("timeout",)).label == "bot.yaml:1:10"


def test_profile_argument_and_variable_select_a_profile(
    profiles_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """profile= beats $BOT_PROFILE, which beats default_profile; a profile overrides shared keys."""
    monkeypatch.setenv("BOT_PROFILE", "backup")
    config = load_config()
    assert (len(config.proxy or ()), config.limit, config.timeout) == (2, 20, 30)
    assert config.api.base == "http://127.0.0.1:8081"
    assert str(load_config(profile="main").proxy) == "socks5://127.0.0.1:1080"
    monkeypatch.setenv("BOT_LIMIT", "5")
    assert load_config().limit == 5  # the environment still wins over the YAML profile


def test_nested_env_merges_into_the_profile_route(
    profiles_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BOT_PROXY__1__PASSWORD completes hop 2 of the selected profile's chain."""
    monkeypatch.setenv("BOT_PROXY__1__PASSWORD", "from-env")
    config = load_config(profile="backup")
    assert config.proxy is not None
    assert config.proxy[1].secret() == "from-env"


def test_unknown_profile_lists_the_known_ones(
    profiles_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown profile is a ConfigError that names the known profiles and who asked."""
    with pytest.raises(
        ConfigError,
        match=r"keyword argument profile=: profile: unknown profile 'staging'; the profiles in bot.yaml are backup, main",
    ):
        load_config(profile="staging")
    monkeypatch.setenv("BOT_PROFILE", "prod")
    with pytest.raises(
        ConfigError, match=r"environment variable BOT_PROFILE: profile: unknown profile 'prod'"
    ):
        load_config()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "profiles:\n  a: {limit: 1}\n  b: {limit: 2}\n",
            "bot.yaml:1:1: profiles: choose one of the profiles a, b: set default_profile, $BOT_PROFILE or profile=",
        ),
        (
            "default_profile: a\nprofiles:\n  b: {limit: 2}\n",
            "bot.yaml:1:18: profile: unknown profile 'a'; the profiles in bot.yaml are b",
        ),
        (
            "default_profile: a\n",
            "bot.yaml:1:1: default_profile: there are no profiles to choose from",
        ),
        ("profiles: [a, b]\n", "bot.yaml:1:11: profiles: expected a mapping of names to settings"),
        ("profiles:\n  a: 5\n", "bot.yaml:2:6: profiles.a: expected a mapping of settings"),
        (
            "default_profile: a\nprofiles:\n  a: {limt: 1}\n",
            "bot.yaml:3:7: limt: unknown setting 'limt'; did you mean 'limit'?",
        ),
        (
            "default_profile: [a]\nprofiles:\n  a: {}\n",
            "default_profile: expected the name of a profile",
        ),
    ],
)
def test_profile_mistakes_are_located(tmp_path: Path, text: str, message: str) -> None:
    """Broken profile sections are reported at their place in the file."""
    (tmp_path / "bot.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert message in str(caught.value)


def test_profile_requested_without_profiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asking for a profile when the file (or any file) has none is an error."""
    monkeypatch.setenv("BOT_PROFILE", "main")
    with pytest.raises(
        ConfigError, match="profile 'main' was selected, but there is no config file"
    ):
        load_config()
    (tmp_path / "bot.yaml").write_text("limit: 3\n")
    with pytest.raises(
        ConfigError, match=r"profile 'main' was selected, but bot\.yaml defines no profiles"
    ):
        load_config()
