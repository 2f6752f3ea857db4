"""Every file in sample_configs/ loads and means what its comments say."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from botsession import build_session_from_config, load_config

SAMPLES = Path(__file__).resolve().parent.parent / "sample_configs"
YAML_SAMPLES = sorted(SAMPLES.glob("*.yaml"))
ENV_SAMPLES = sorted(SAMPLES.glob("*.env"))


def test_the_samples_are_all_covered() -> None:
    """Nothing in the folder escapes the tests below."""
    assert {p.name for p in SAMPLES.iterdir()} == {p.name for p in YAML_SAMPLES + ENV_SAMPLES}
    assert len(YAML_SAMPLES) >= 4


@pytest.mark.parametrize("sample", YAML_SAMPLES, ids=lambda p: p.name)
def test_yaml_sample_loads_and_builds_a_session(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each YAML sample validates and becomes a session."""
    monkeypatch.setenv("PROXY_PASSWORD", "from-the-environment")
    session = build_session_from_config(sample)
    assert session.config == load_config(sample)


def test_chain_sample_is_four_mixed_hops(monkeypatch: pytest.MonkeyPatch) -> None:
    """chain.yaml is socks5 → http (with default password) → socks4 → socks4a, and this machine
    resolves no name for it: the hop after the socks4 hop is an IP address."""
    monkeypatch.delenv("RELAY_PASSWORD", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no BotSessionWarning about names resolved here
        config = load_config(SAMPLES / "chain.yaml")
    route = config.proxy
    assert route is not None
    assert [(h.scheme, h.rdns) for h in route] == [
        ("socks5", True),
        ("http", True),
        ("socks4", False),
        ("socks4a", True),
    ]
    assert route[1].secret() == "change-me"
    assert config.resolved_locally(route) == ()


def test_credentialed_sample_takes_the_password_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """credentialed.yaml reads ${PROXY_PASSWORD}."""
    monkeypatch.setenv("PROXY_PASSWORD", "s3cret")
    route = load_config(SAMPLES / "credentialed.yaml").proxy
    assert route is not None
    assert (route[0].username, route[0].secret()) == ("bot", "s3cret")


def test_local_api_sample_points_aiogram_at_the_local_server() -> None:
    """local_api.yaml makes aiogram talk to a local Bot API server directly."""
    session = build_session_from_config(SAMPLES / "local_api.yaml")
    assert session.proxy is None
    assert session.api.is_local
    assert session.api.api_url("T", "getMe") == "http://127.0.0.1:8081/botT/getMe"


@pytest.mark.parametrize("sample", ENV_SAMPLES, ids=lambda p: p.name)
def test_env_sample_loads(sample: Path) -> None:
    """The .env example is valid as an env_file, and the bot's own BOT_TOKEN is ignored."""
    config = load_config(env_file=sample)
    assert str(config.proxy) == "socks5://127.0.0.1:1080"
    assert (config.timeout, config.connect_timeout, config.limit) == (30, 5, 100)


def test_fallback_sample_has_a_primary_and_two_fallbacks() -> None:
    """fallback.yaml: one primary, a single-proxy fallback and a chain fallback."""
    config = load_config(SAMPLES / "fallback.yaml")
    assert [len(route) for route in config.routes] == [1, 1, 2]
    assert config.fallback_retry_primary_after == 300


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (None, ("socks5://10.0.0.1:1080", 1, 100, "https://api.telegram.org")),
        ("staging", ("socks5://127.0.0.1:1080", 0, 10, "https://api.telegram.org")),
        ("local", ("None", 0, 100, "http://127.0.0.1:8081")),
    ],
)
def test_profiles_sample(profile: str | None, expected: tuple[str, int, int, str]) -> None:
    """profiles.yaml: the default profile and each named one, over the shared timeouts."""
    config = load_config(SAMPLES / "profiles.yaml", profile=profile)
    assert (str(config.proxy), len(config.fallback), config.limit, config.api.base) == expected
    assert (config.timeout, config.connect_timeout) == (30, 5)


def test_https_proxy_sample_is_tls_to_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """https_proxy.yaml: an https proxy checked against certifi's CAs, with the password from
    the environment, and an https hop 2 behind a SOCKS5 hop in the fallback chain."""
    monkeypatch.setenv("PROXY_PASSWORD", "s3cret")
    config = load_config(SAMPLES / "https_proxy.yaml")
    primary, chain = config.routes
    assert [(h.scheme, h.tls, h.verify, h.ca_file) for h in primary] == [
        ("https", True, True, None)
    ]
    assert (primary[0].username, primary[0].secret()) == ("bot", "s3cret")
    assert chain.describe("api.telegram.org") == (
        "client → socks5 10.0.0.3:1080 → https relay.example.net:8443 (TLS, auth) → "
        "api.telegram.org"
    )


def test_telegram_link_sample_is_a_socks5_hop_with_remote_dns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """telegram_link.yaml: the t.me link is socks5 with remote DNS and the password from the
    environment; the tg:// fallback has no credentials."""
    monkeypatch.setenv("PROXY_PASSWORD", "s3cret")
    config = load_config(SAMPLES / "telegram_link.yaml")
    [hop], [backup] = config.routes
    assert (hop.scheme, hop.host, hop.port, hop.username, hop.secret(), hop.rdns) == (
        "socks5",
        "proxy.example.com",
        1080,
        "bot",
        "s3cret",
        True,
    )
    assert str(backup) == "socks5://backup.example.net:1080"
    assert config.resolved_locally(config.proxy)[0].name == "proxy.example.com"
