"""BotSessionConfig is a genuine pydantic-settings class: its sources, their order, embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from botsession import BotSessionConfig, ConfigError, load_config
from botsession.config_schema import HopSpec
from botsession.sources import DotEnvSource, EnvironmentSource, YamlFileSource
from botsession.sources.provenance import HOP_KEYS


def test_settings_read_the_environment_dotenv_and_bot_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BotSessionConfig() reads BOT_ variables over .env over ./bot.yaml, keyword arguments over all."""
    (tmp_path / "bot.yaml").write_text("limit: 40\ntimeout: 30\nconnect_timeout: 7\n")
    (tmp_path / ".env").write_text("BOT_LIMIT=30\nBOT_TIMEOUT=20\n")
    monkeypatch.setenv("BOT_LIMIT", "20")
    config = BotSessionConfig()
    assert (config.limit, config.timeout, config.connect_timeout) == (20, 20, 7)
    assert BotSessionConfig(limit=10).limit == 10
    assert config == load_config()


def test_hop_settings_complete_a_route_from_another_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A YAML chain completed by BOT_PROXY__1__PASSWORD, and replaced whole by BOT_PROXY."""
    (tmp_path / "bot.yaml").write_text(
        "proxy:\n  - socks5://127.0.0.1:1080\n  - http://bot@127.0.0.1:3128\n"
    )
    monkeypatch.setenv("BOT_PROXY__1__PASSWORD", "from-the-environment")
    route = BotSessionConfig().proxy
    assert route is not None
    assert [hop.address for hop in route] == ["127.0.0.1:1080", "127.0.0.1:3128"]
    assert route[1].secret() == "from-the-environment"
    monkeypatch.delenv("BOT_PROXY__1__PASSWORD")
    monkeypatch.setenv("BOT_PROXY", "socks5://127.0.0.1:9050")
    assert str(BotSessionConfig().proxy) == "socks5://127.0.0.1:9050"


def test_prefix_and_dotenv_follow_pydantic_settings_own_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """_env_prefix= and _env_file= work as for pydantic-settings' built-in sources."""
    (tmp_path / "tg.env").write_text("TG_LIMIT=5\n")
    monkeypatch.setenv("TG_TIMEOUT", "9")
    config = BotSessionConfig(_env_prefix="TG_", _env_file=str(tmp_path / "tg.env"))
    assert (config.limit, config.timeout) == (5, 9)


VAULT: dict[str, Any] = {
    "limit": 9,
    "proxy": {"password": "from-the-vault"},
    "api": {"base": "http://127.0.0.1:8081"},
}


class Secrets(PydanticBaseSettingsSource):
    """A user's own source, as the pydantic-settings documentation shows how to add one; it
    hands out the same mapping every time (a cache, say)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return VAULT


class WithSecrets(BotSessionConfig):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        ours = super().settings_customise_sources(
            settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        )
        # Between the environment and the files: over bot.yaml, under BOT_ variables.
        return (*ours[:2], Secrets(settings_cls), *ours[2:])


def test_a_users_own_source_takes_its_place_in_the_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source added in settings_customise_sources wins over bot.yaml, loses to BOT_ variables,
    and its hop settings complete the YAML route like BOT_PROXY__PASSWORD would."""
    (tmp_path / "bot.yaml").write_text("proxy: socks5://bot@127.0.0.1:1080\nlimit: 40\n")
    config = WithSecrets()
    assert config.limit == 9
    assert config.proxy is not None
    assert config.proxy[0].secret() == "from-the-vault"
    monkeypatch.setenv("BOT_LIMIT", "3")
    assert WithSecrets().limit == 3


def test_merging_leaves_a_sources_own_values_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The merge changes only mappings it made (linear time: it does not copy them for every
    variable): BOT_API__IS_LOCAL completes the api settings of a user's source without writing
    into that source's mapping."""
    Path("bot.yaml").write_text("proxy: socks5://bot@127.0.0.1:1080\n")
    monkeypatch.setenv("BOT_API__IS_LOCAL", "true")
    config = WithSecrets()
    assert (config.api.base, config.api.is_local, config.limit) == (
        "http://127.0.0.1:8081",
        True,
        9,
    )
    assert VAULT == {
        "limit": 9,
        "proxy": {"password": "from-the-vault"},
        "api": {"base": "http://127.0.0.1:8081"},
    }


def test_the_sources_are_pydantic_settings_sources() -> None:
    """Each of botsession's sources is a PydanticBaseSettingsSource, in the documented order."""
    sources = BotSessionConfig.settings_customise_sources(
        BotSessionConfig,
        *([None] * 4),  # type: ignore[arg-type]
    )
    assert [type(source) for source in sources[1:]] == [
        EnvironmentSource,
        DotEnvSource,
        YamlFileSource,
    ]
    assert all(isinstance(source, PydanticBaseSettingsSource) for source in sources[1:])


class App(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MYAPP_", env_nested_delimiter="__")

    telegram: BotSessionConfig = BotSessionConfig.model_construct()


def test_it_embeds_as_a_field_of_an_applications_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MYAPP_TELEGRAM__PROXY and MYAPP_TELEGRAM__LIMIT configure the embedded settings."""
    monkeypatch.setenv("MYAPP_TELEGRAM__PROXY", "socks5://127.0.0.1:1080")
    monkeypatch.setenv("MYAPP_TELEGRAM__LIMIT", "7")
    telegram = App().telegram
    assert str(telegram.proxy) == "socks5://127.0.0.1:1080"
    assert telegram.limit == 7


def test_problems_in_a_source_are_a_config_error_and_bad_values_a_validation_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that cannot be read says where; a bad value is pydantic's ValidationError."""
    (tmp_path / "bot.yaml").write_text("limit: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bot.yaml:\d+:\d+: YAML syntax error"):
        BotSessionConfig()
    (tmp_path / "bot.yaml").write_text("limit: 5\n")
    monkeypatch.setenv("BOT_TIMEOUT", "soon")
    with pytest.raises(ValidationError, match="timeout"):
        BotSessionConfig()


def test_the_hop_keys_of_the_sources_are_the_schemas() -> None:
    """The sources' list of hop keys is HopSpec's (show and error messages rely on it)."""
    assert tuple(HopSpec.model_fields) == HOP_KEYS
