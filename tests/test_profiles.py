"""Named profiles in one YAML file, selected by argument, variable or default_profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from botsession import ConfigError, load_config
from botsession.factory import load_config_with_origins

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
