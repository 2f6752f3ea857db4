"""BotSessionConfig as a field of an application's own settings: it reads only the
application's sources, and no error of the application's model shows a password."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from botsession import (
    BotSessionConfig,
    ConfigError,
    build_client_session,
    load_config,
)

from .conftest import ProxyFactory
from .servers import BotApiStandIn
from .support import SENTINEL, TOKEN

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_recipe() -> str:
    """The README's embedding recipe: the Python block after "embeds as a field"."""
    text = README.read_text(encoding="utf-8")
    after = text[text.index("embeds as a field of an") :]
    match = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    assert match is not None
    return match.group(1)


def recipe_app() -> type[BaseSettings]:
    """The application settings class exactly as the README writes it."""
    namespace: dict[str, Any] = {}
    code = compile(readme_recipe(), "README.md", "exec", dont_inherit=True)  # as a user runs it
    exec(code, namespace)  # noqa: S102 (our own README)
    app = namespace["App"]
    assert issubclass(app, BaseSettings)
    return app


class App(BaseSettings):
    """An application's settings, as in the README."""

    model_config = SettingsConfigDict(env_prefix="MYAPP_", env_nested_delimiter="__")

    telegram: BotSessionConfig = BotSessionConfig.model_construct()


class DotenvApp(App):
    """An application that also reads its own .env (and ignores the lines of other programs)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")


class QuietApp(DotenvApp):
    """The same application with pydantic's own input hiding switched on."""

    model_config = SettingsConfigDict(hide_input_in_errors=True)


# --- which sources an embedded config reads ----------------------------------------------------


def write_stray_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BOT_ settings the application never asked for: a variable, .env lines and ./bot.yaml."""
    (tmp_path / "bot.yaml").write_text("limit: 3\nproxy: socks5://127.0.0.1:1080\n")
    (tmp_path / ".env").write_text("BOT_CONNECT_TIMEOUT=4\n")
    monkeypatch.setenv("BOT_LIMIT", "7")


@pytest.mark.parametrize("app_variable", [None, "MYAPP_TELEGRAM__TIMEOUT"])
def test_an_embedded_config_reads_only_the_applications_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app_variable: str | None
) -> None:
    """BOT_ variables, BOT_ lines of .env and ./bot.yaml are ignored whether or not a
    MYAPP_TELEGRAM__ variable is set; BotSessionConfig() and load_config still read them."""
    write_stray_sources(tmp_path, monkeypatch)
    if app_variable is not None:
        monkeypatch.setenv(app_variable, "30")
    telegram = App().telegram
    assert telegram.proxy is None
    assert (telegram.limit, telegram.connect_timeout) == (100, 10)
    assert telegram.timeout == (30 if app_variable else 60)
    assert telegram.model_fields_set == ({"timeout"} if app_variable else set())
    for standalone in (BotSessionConfig(), load_config()):
        assert (standalone.limit, standalone.connect_timeout) == (7, 4)
        assert str(standalone.proxy) == "socks5://127.0.0.1:1080"


@pytest.mark.parametrize("app_variable", [None, "MYAPP_TELEGRAM__LIMIT"])
def test_an_embedded_config_ignores_bot_config_and_bot_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app_variable: str | None
) -> None:
    """$BOT_CONFIG naming a missing file and $BOT_PROFILE naming no profile break a standalone
    load, and are none of an embedded config's business."""
    monkeypatch.setenv("BOT_CONFIG", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("BOT_PROFILE", "staging")
    if app_variable is not None:
        monkeypatch.setenv(app_variable, "20")
    assert App().telegram.limit == (20 if app_variable else 100)
    with pytest.raises(ConfigError, match="the config file does not exist"):
        BotSessionConfig()


def test_model_validate_validates_the_data_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """model_validate reads the mapping it is given, as model_validate_json always did."""
    write_stray_sources(tmp_path, monkeypatch)
    for config in (
        BotSessionConfig.model_validate({"timeout": 30}),
        BotSessionConfig.model_validate_json('{"timeout": 30}'),
    ):
        assert (config.limit, config.timeout, config.proxy) == (100, 30, None)


def test_an_embedded_config_takes_the_applications_values_over_its_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings from the application's variables, .env and keyword arguments all arrive, and
    defaults that follow other settings follow the application's values."""
    write_stray_sources(tmp_path, monkeypatch)
    (tmp_path / ".env").write_text("MYAPP_TELEGRAM__LIMIT=25\nBOT_LIMIT=8\n")
    monkeypatch.setenv("MYAPP_TELEGRAM__TIMEOUT", "5")
    telegram = DotenvApp().telegram
    assert (telegram.limit, telegram.timeout, telegram.connect_timeout) == (25, 5, 5)
    assert (telegram.proxy, telegram.model_fields_set) == (None, {"limit", "timeout"})
    assert App(telegram={"limit": 3}).telegram.limit == 3


# --- the README's recipe, as written -----------------------------------------------------------


def test_the_readme_recipe_defaults_to_a_direct_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing set, the recipe's field is BotSessionConfig's defaults, stray BOT_ sources
    or not."""
    expected = BotSessionConfig().model_dump()
    write_stray_sources(tmp_path, monkeypatch)
    telegram = recipe_app()().telegram  # type: ignore[attr-defined]
    assert isinstance(telegram, BotSessionConfig)
    assert telegram.model_dump() == expected


def test_the_readme_recipe_reads_the_variables_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables in the recipe's comment configure the route and the limit."""
    comment = readme_recipe().strip().splitlines()[-1]
    for assignment in comment.lstrip("# ").split():
        name, _, value = assignment.partition("=")
        monkeypatch.setenv(name, value)
    telegram = recipe_app()().telegram  # type: ignore[attr-defined]
    assert str(telegram.proxy) == "socks5://127.0.0.1:1080"
    assert telegram.limit == 20


def test_the_readme_recipe_takes_a_chain_as_json_and_a_password_from_nested_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A chain and fallbacks as JSON; a hop as URL plus password in two nested variables."""
    monkeypatch.setenv(
        "MYAPP_TELEGRAM__PROXY", '["socks5://127.0.0.1:1080", "http://bot:pw@127.0.0.1:3128"]'
    )
    monkeypatch.setenv("MYAPP_TELEGRAM__FALLBACK", '["socks5://127.0.0.1:9050"]')
    telegram = recipe_app()().telegram  # type: ignore[attr-defined]
    assert telegram.proxy is not None
    assert [hop.label() for hop in telegram.proxy] == [
        "socks5://127.0.0.1:1080",
        "http://bot:***@127.0.0.1:3128",
    ]
    assert [str(route) for route in telegram.fallback] == ["socks5://127.0.0.1:9050"]
    monkeypatch.delenv("MYAPP_TELEGRAM__PROXY")
    monkeypatch.setenv("MYAPP_TELEGRAM__PROXY__URL", "http://bot@127.0.0.1:3128")
    monkeypatch.setenv("MYAPP_TELEGRAM__PROXY__PASSWORD", SENTINEL)
    route = recipe_app()().telegram.proxy  # type: ignore[attr-defined]
    assert [(hop.label(), hop.secret()) for hop in route] == [
        ("http://bot:***@127.0.0.1:3128", SENTINEL)
    ]


async def test_an_embedded_config_connects_through_its_route(
    monkeypatch: pytest.MonkeyPatch, bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A route from the application's variables, with the password in a nested variable,
    carries a real request to the Bot API."""
    guarded = proxy("socks5", "bot", SENTINEL)
    monkeypatch.setenv("MYAPP_TELEGRAM__PROXY__URL", f"socks5://bot@127.0.0.1:{guarded.port}")
    monkeypatch.setenv("MYAPP_TELEGRAM__PROXY__PASSWORD", SENTINEL)
    monkeypatch.setenv("MYAPP_TELEGRAM__API__BASE", bot_api.base)
    monkeypatch.setenv("BOT_LIMIT", "0")  # another program's setting, invalid for botsession
    async with (
        build_client_session(App().telegram) as client,
        client.get(f"{bot_api.base}/bot{TOKEN}/getMe") as response,
    ):
        assert response.status == 200
    assert guarded.destinations == [("127.0.0.1", bot_api.port)]
