"""BotSessionConfig as a field of an application's own settings: it reads only the
application's sources, and no error of the application's model, nor of BotSessionConfig itself,
shows a password."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yarl
from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from botsession import (
    BotSessionConfig,
    ConfigError,
    ProxyHop,
    ProxyRoute,
    build_client_session,
    load_config,
)

from .conftest import ProxyFactory
from .servers import BotApiStandIn
from .support import SENTINEL, TOKEN, basic_auth, deep_texts, exceptions_in_chain, frames, leaks

CONFIGURATION_PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def documented_recipe() -> str:
    """The documented embedding recipe (docs/configuration.md): the Python block after
    "embeds as a field"."""
    text = CONFIGURATION_PAGE.read_text(encoding="utf-8")
    after = text[text.index("embeds as a field of an") :]
    match = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    assert match is not None
    return match.group(1)


def recipe_app() -> type[BaseSettings]:
    """The application settings class exactly as the documentation writes it."""
    namespace: dict[str, Any] = {}
    # Compiled as a user runs it.
    code = compile(documented_recipe(), "docs/configuration.md", "exec", dont_inherit=True)
    exec(code, namespace)  # noqa: S102 (our own documentation)
    app = namespace["App"]
    assert issubclass(app, BaseSettings)
    return app


class App(BaseSettings):
    """An application's settings, as in the documentation."""

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


# --- the documented recipe, as written --------------------------------------------------------


def test_the_documented_recipe_defaults_to_a_direct_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing set, the recipe's field is BotSessionConfig's defaults, stray BOT_ sources
    or not."""
    expected = BotSessionConfig().model_dump()
    write_stray_sources(tmp_path, monkeypatch)
    telegram = recipe_app()().telegram  # type: ignore[attr-defined]
    assert isinstance(telegram, BotSessionConfig)
    assert telegram.model_dump() == expected


def test_the_documented_recipe_reads_the_variables_it_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The variables in the recipe's comment configure the route and the limit."""
    comment = documented_recipe().strip().splitlines()[-1]
    for assignment in comment.lstrip("# ").split():
        name, _, value = assignment.partition("=")
        monkeypatch.setenv(name, value)
    telegram = recipe_app()().telegram  # type: ignore[attr-defined]
    assert str(telegram.proxy) == "socks5://127.0.0.1:1080"
    assert telegram.limit == 20


def test_the_documented_recipe_takes_a_chain_as_json_and_a_password_from_nested_variables(
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


def test_the_documented_recipe_reports_a_bad_value_at_the_applications_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad value is the application's ValidationError, located under its field, saying what
    is wrong, with the password masked."""
    monkeypatch.setenv("MYAPP_TELEGRAM__PROXY", f"socks5://bob:{SENTINEL}@127.0.0.1:99999")
    with pytest.raises(ValidationError) as caught:
        recipe_app()()
    (error,) = caught.value.errors()
    assert error["loc"][:2] == ("telegram", "proxy")
    assert error["msg"] == "the port must be a number from 1 to 65535, found 99999"
    assert error["input"] == "socks5://bob:***@127.0.0.1:99999"
    assert "input_value='socks5://bob:***@127.0.0.1:99999'" in str(caught.value)


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


# --- no password in any error of the enclosing model -----------------------------------------

URL = f"socks5://u:{SENTINEL}@127.0.0.1"
BAD_VALUES: dict[str, Callable[[], Any]] = {
    "bad port": lambda: {"proxy": f"{URL}:99999"},
    "bad scheme in a chain": lambda: {
        "proxy": ["socks5://127.0.0.1:1", f"socks6://u:{SENTINEL}@127.0.0.1:1"]
    },
    "bad password field": lambda: {
        "proxy": {"url": "socks5://u@127.0.0.1:1", "password": [SENTINEL]}
    },
    "password without url": lambda: {"proxy": {"password": SENTINEL}},
    "misspelt password key": lambda: {
        "proxy": {"url": "socks5://u@127.0.0.1:1", "pasword": SENTINEL}
    },
    "misspelt password key and no url": lambda: {"proxy": {"pasword": SENTINEL}},
    "password on socks4": lambda: {
        "proxy": {"url": "socks4://u@127.0.0.1:1", "password": SENTINEL}
    },
    "bad fallback": lambda: {
        "proxy": "socks5://127.0.0.1:1",
        "fallback": [f"socks6://u:{SENTINEL}@127.0.0.1:1"],
    },
    "too many fallbacks": lambda: {"proxy": f"{URL}:1", "fallback": [f"{URL}:1"] * 17},
    "telegram link": lambda: {
        "proxy": f"https://t.me/socks?server=127.0.0.1&port=99999&user=u&pass={SENTINEL}"
    },
    "url as a number": lambda: {"timeout": f"{URL}:1"},
    "credentials in the api base": lambda: {"api": {"base": f"https://u:{SENTINEL}@api.example"}},
    "unknown setting": lambda: {"proxi": f"{URL}:1"},
    "not a mapping": lambda: f"{URL}:1",
}


def nested(value: object, depth: int) -> object:
    for _ in range(depth):
        value = [value]
    return value


KEYWORD_ONLY: dict[str, Callable[[], Any]] = {
    "a deeply nested list": lambda: {"timeout": nested(f"{URL}:1", 5000)},
    "a url object as a number": lambda: {"timeout": yarl.URL(f"{URL}:1")},
    "an object that shows the password": lambda: {
        "proxy": {"url": "socks5://u@127.0.0.1:1", "password": SENTINEL},
        "timeout": SimpleNamespace(password=SENTINEL),
    },
    "basic auth as a number": lambda: {"timeout": ("socks5://h:1", basic_auth("u", SENTINEL))},
    "basic auth in too many fallbacks": lambda: {
        "proxy": "socks5://127.0.0.1:1",
        "fallback": [("socks5://127.0.0.1:1", basic_auth("u", SENTINEL))] * 17,
    },
}


def deliver(
    app: type[App], delivery: str, case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], object]:
    """Put the bad value where the application reads it; the returned call validates it.

    The sentinel never becomes a local of a frame the error passes through, so a password found
    in a traceback came from the libraries.
    """
    if delivery == "keywords":
        return lambda: app(telegram={**BAD_VALUES, **KEYWORD_ONLY}[case]())
    if delivery == "variable":
        monkeypatch.setenv("MYAPP_TELEGRAM", json.dumps(BAD_VALUES[case]()))
    elif delivery == "nested variables":
        for key, value in BAD_VALUES[case]().items():
            text = value if isinstance(value, str) else json.dumps(value)
            monkeypatch.setenv(f"MYAPP_TELEGRAM__{key.upper()}", text)
    else:
        (tmp_path / ".env").write_text(f"MYAPP_TELEGRAM='{json.dumps(BAD_VALUES[case]())}'\n")
    return app


def delivered_cases() -> Iterator[tuple[str, str]]:
    for case in BAD_VALUES:
        for delivery in ("variable", "nested variables", "dotenv", "keywords"):
            if delivery != "nested variables" or case != "not a mapping":
                yield case, delivery
    for case in KEYWORD_ONLY:
        yield case, "keywords"


def texts_of_the_error(error: ValidationError) -> list[str]:
    """Everything a program or an error reporter can show of a ValidationError: str, repr,
    errors() with every option, json(), and the exception chain."""
    texts = [str(error), repr(error), error.json(), error.json(include_context=False)]
    for options in ({}, {"include_url": False, "include_context": False}):
        texts += list(deep_texts(error.errors(**options)))
    for exception in exceptions_in_chain(error):
        texts += [str(exception), repr(exception), *map(repr, exception.args)]
    return texts


def traceback_locals_outside_pydantic(error: BaseException) -> list[str]:
    """The locals of every frame the error passed through, except pydantic's own.

    pydantic's ``BaseModel.__init__`` and pydantic-settings' ``BaseSettings.__init__`` of the
    enclosing model hold that model's raw input (all of its settings, as read) by design; every
    other frame is the test's or botsession's.
    """
    texts = []
    for exception in exceptions_in_chain(error):
        for frame in frames(exception.__traceback__):
            if frame.f_globals.get("__name__", "").startswith("pydantic"):
                continue
            for name, value in frame.f_locals.items():
                texts += [f"{frame.f_code.co_name}.{name}={text}" for text in deep_texts(value)]
    return texts


@pytest.mark.parametrize("app", [DotenvApp, QuietApp], ids=["app", "app hiding input"])
@pytest.mark.parametrize(("case", "delivery"), list(delivered_cases()))
def test_no_error_of_the_enclosing_model_shows_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app: type[App], case: str, delivery: str
) -> None:
    """A bad embedded value from the application's variables, .env or keyword arguments: the
    application's ValidationError locates it under telegram and shows the password nowhere."""
    validate = deliver(app, delivery, case, tmp_path, monkeypatch)
    with pytest.raises(ValidationError) as caught:
        validate()
    errors = caught.value.errors()
    assert errors
    assert all(error["loc"][0] == "telegram" for error in errors)
    found = leaks(texts_of_the_error(caught.value))
    assert not found, found[0][:400]
    found = leaks(traceback_locals_outside_pydantic(caught.value))
    assert not found, found[0][:400]


@pytest.mark.parametrize("case", [*BAD_VALUES, *KEYWORD_ONLY])
def test_no_error_of_the_model_itself_shows_the_password(case: str) -> None:
    """BotSessionConfig validated by itself: errors() and json() mask the password too, not
    only str() (which hide_input_in_errors covers)."""
    with pytest.raises(ValidationError) as caught:
        BotSessionConfig.model_validate({**BAD_VALUES, **KEYWORD_ONLY}[case]())
    found = leaks(texts_of_the_error(caught.value))
    assert not found, found[0][:400]
    if case != "not a mapping":
        with pytest.raises(ValidationError) as caught:
            BotSessionConfig(**{**BAD_VALUES, **KEYWORD_ONLY}[case]())
        found = leaks(texts_of_the_error(caught.value))
        assert not found, found[0][:400]


def test_a_source_problem_of_the_model_itself_leaves_no_password_in_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BotSessionConfig() with a broken bot.yaml raises ConfigError; no frame of botsession in
    its traceback holds the BOT_PROXY password it read (nor a copy of the environment)."""
    (tmp_path / "bot.yaml").write_text("limit: [unclosed\n")
    monkeypatch.setenv("BOT_PROXY", f"{URL}:1")
    with pytest.raises(ConfigError, match="YAML syntax error") as caught:
        BotSessionConfig()
    found = leaks(traceback_locals_outside_pydantic(caught.value))
    assert not found, found[0][:400]


class Job(BaseModel):
    """An application model that uses botsession's route and hop types as its own fields."""

    route: ProxyRoute | None = None
    hop: ProxyHop | None = None


@pytest.mark.parametrize(
    "value",
    [
        {"route": f"{URL}:99999"},
        {"route": [f"{URL}:1"] * 17},
        {"route": {"url": "socks5://u@127.0.0.1:1", "pasword": SENTINEL}},
        {"hop": {"password": SENTINEL}},
        {"hop": f"socks6://u:{SENTINEL}@127.0.0.1:1"},
        {"hop": {"scheme": "socks5", "host": "h h", "port": 1, "rdns": True, "password": SENTINEL}},
    ],
    ids=["bad port", "long chain", "misspelt key", "no url", "bad scheme", "canonical form"],
)
def test_routes_and_hops_as_fields_of_a_model_mask_the_password(value: dict[str, Any]) -> None:
    """ProxyRoute and ProxyHop used in an application's own model: its error shows no password."""
    with pytest.raises(ValidationError) as caught:
        Job.model_validate(value)
    found = leaks(texts_of_the_error(caught.value))
    assert not found, found[0][:400]


def test_masked_errors_keep_what_the_user_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Location, type, message and the harmless parts of the input survive the masking."""
    monkeypatch.setenv(
        "MYAPP_TELEGRAM",
        json.dumps({"proxy": {"url": "socks5://u@127.0.0.1:1", "pasword": SENTINEL}, "limit": 0}),
    )
    with pytest.raises(ValidationError) as caught:
        App()
    errors = {error["loc"]: error for error in caught.value.errors()}
    limit = errors[("telegram", "limit")]
    assert (limit["type"], limit["input"], limit["ctx"]) == ("greater_than_equal", 0, {"ge": 1})
    assert limit["url"].endswith("/greater_than_equal")
    misspelt = errors[("telegram", "proxy", 0, "pasword")]
    assert (misspelt["type"], misspelt["input"]) == ("extra_forbidden", "***")
