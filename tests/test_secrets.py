"""A sentinel password, put in every kind of input, never shows up in any output."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError

from botsession import ConfigError, build_session_from_config, load_config

from .conftest import ProxyFactory
from .servers import BotApiStandIn
from .support import SENTINEL, TOKEN, basic_auth, free_port


def chain_texts(error: BaseException) -> list[str]:
    """str and repr of an exception and of everything in its __cause__/__context__ chain."""
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), *map(str, current.args)]
        current = current.__cause__ or current.__context__
    return texts


def good_forms(tmp_path: Path) -> list[Any]:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SENTINEL + "\n")
    return [
        f"socks5://u:{SENTINEL}@127.0.0.1:1080",
        {"url": "socks5://u@127.0.0.1:1080", "password": SENTINEL},
        {"url": "http://u@127.0.0.1:3128", "password_file": str(secret_file)},
        ("socks5://127.0.0.1:1080", basic_auth("u", SENTINEL)),
        [f"socks5://u:{SENTINEL}@127.0.0.1:1", ("http://127.0.0.1:2", basic_auth("v", SENTINEL))],
    ]


def test_valid_configs_never_show_the_password(tmp_path: Path) -> None:
    """repr/str of the config, route, hops and session mask the password for every input form."""
    for form in good_forms(tmp_path):
        config = load_config(proxy=form)
        assert config.proxy is not None
        session = build_session_from_config(config)
        texts = [
            repr(config),
            str(config),
            repr(config.proxy),
            str(config.proxy),
            repr(session),
            str(session),
        ]
        texts += [repr(hop) for hop in config.proxy] + [hop.url for hop in config.proxy]
        texts += [config.model_dump_json(), repr(config.model_dump())]
        assert all(SENTINEL not in text for text in texts), form
        assert any(hop.secret() == SENTINEL for hop in config.proxy)


def test_env_and_yaml_sources_never_show_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Passwords from YAML, ${VAR} and BOT_PROXY__PASSWORD are masked too."""
    monkeypatch.setenv("SECRET", SENTINEL)
    (tmp_path / "bot.yaml").write_text(
        "proxy:\n  url: socks5://u@127.0.0.1:1\n  password: ${SECRET}\n"
    )
    assert SENTINEL not in repr(load_config())
    monkeypatch.setenv("BOT_PROXY__PASSWORD", SENTINEL)
    assert SENTINEL not in repr(load_config())


BAD_INPUTS: list[tuple[str, dict[str, str], str]] = [
    # (bot.yaml text, environment, what the error says)
    (f"proxy: socks6://u:{SENTINEL}@127.0.0.1:1\n", {}, "unsupported protocol"),
    (f"proxy: socks5://u:{SENTINEL}/x@127.0.0.1:1\n", {}, "percent-encode it"),
    (f"proxy: socks5://u:{SENTINEL}\n", {}, "the port must be a number"),
    (f"proxy: socks5://u:{SENTINEL}@127.0.0.1:0\n", {}, "from 1 to 65535"),
    (f"proxy: socks4://u:{SENTINEL}@127.0.0.1:1\n", {}, "socks4 has no passwords"),
    (
        f"proxy:\n  url: socks5://u@127.0.0.1:1\n  password: {SENTINEL}\n  passwrd: {SENTINEL}\n",
        {},
        "unknown setting 'passwrd'",
    ),
    (
        f"proxy:\n  url: socks5://u@127.0.0.1:1\n  password: [{SENTINEL}]\n",
        {},
        "expected a valid string, found ***",
    ),
    (
        f"proxy:\n  url: socks5://u@127.0.0.1:1\n  password: {SENTINEL}\n  password_file: /x\n",
        {},
        "not both",
    ),
    (f"proxy: socks5://u:{SENTINEL}@127.0.0.1:1\ntimeout: [{SENTINEL}\n", {}, "YAML syntax error"),
    (
        f"proxy: socks5://u:{SENTINEL}@127.0.0.1:1\ntimeout: {SENTINEL}\n",
        {},
        "timeout: expected a valid number, unable to parse string as a number, found '***'",
    ),
    (
        "proxy: socks5://u@127.0.0.1:1\n",
        {"BOT_PROXY__PASSWORD": SENTINEL, "BOT_LIMIT": "x"},
        "limit: expected",
    ),
    (
        "",
        {"BOT_PROXY": f'[{{"url": "socks5://u@127.0.0.1:1", "password": "{SENTINEL}"}}'},
        "not valid JSON",
    ),
    (
        "",
        {"BOT_PROXY": f'{{"url": "socks5://u:{SENTINEL}@127.0.0.1:1", "rdns": "{SENTINEL}"}}'},
        "rdns: expected a valid boolean",
    ),
    (
        "proxy: [socks5://127.0.0.1:1, socks5://127.0.0.1:2]\n",
        {"BOT_PROXY__PASSWORD": SENTINEL},
        "2-hop chain",
    ),
]


@pytest.mark.parametrize(("yaml_text", "environment", "expected"), BAD_INPUTS)
def test_config_errors_never_show_the_password(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    yaml_text: str,
    environment: dict[str, str],
    expected: str,
) -> None:
    """ConfigError text, its problems and its exception chain never contain the password."""
    (tmp_path / "bot.yaml").write_text(yaml_text)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert expected in str(caught.value)
    assert all(SENTINEL not in text for text in chain_texts(caught.value))
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_override_errors_never_show_the_password() -> None:
    """Bad keyword arguments that carry the password are masked as well."""
    for bad in (
        (f"socks5://u:{SENTINEL}@127.0.0.1:1", basic_auth("u", SENTINEL), "extra"),
        [("socks9://127.0.0.1:1", basic_auth("u", SENTINEL))],
        {"url": f"socks5://u:{SENTINEL}@127.0.0.1:1", "rdns": "maybe"},
    ):
        with pytest.raises(ConfigError) as caught:
            load_config(proxy=bad)
        assert all(SENTINEL not in text for text in chain_texts(caught.value)), bad
    with (
        pytest.raises(ConfigError) as caught,
        pytest.warns(UserWarning, match="no defined hop order"),
    ):
        load_config(proxy={f"socks5://u:{SENTINEL}@127.0.0.1:1", "socks9://x:1"})
    assert all(SENTINEL not in text for text in chain_texts(caught.value))


async def test_runtime_errors_and_debug_logs_never_show_the_password(
    bot_api: BotApiStandIn, proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing proxied request leaks the password neither in the error chain nor in DEBUG logs."""
    caplog.set_level(logging.DEBUG)
    first, second = proxy("socks5", "u", "right"), proxy("http", "v", "right")
    route = [
        {"url": first.url(credentials=False), "username": "u", "password": "right"},
        {"url": second.url(credentials=False), "username": "v", "password": SENTINEL},
    ]
    session = build_session_from_config(proxy=route, api={"base": bot_api.base})
    with pytest.raises(TelegramNetworkError) as caught:
        async with Bot(TOKEN, session=session) as bot:
            await bot.get_me()
    assert "proxy hop 2 of 2" in str(caught.value)
    assert all(SENTINEL not in text for text in chain_texts(caught.value))
    assert caplog.records, "DEBUG logging was captured"
    assert all(SENTINEL not in record.getMessage() for record in caplog.records)


def test_cli_output_of_every_command_never_shows_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """check, show, show --json, probe and schema print no password from any source."""
    import contextlib
    import io

    from botsession.cli import main

    caplog.set_level(logging.DEBUG)
    secret_file = tmp_path / "secret"
    secret_file.write_text(SENTINEL + "\n")
    dead = [free_port() for _ in range(4)]
    (tmp_path / "bot.yaml").write_text(
        f"proxy:\n  - socks5://a:{SENTINEL}@127.0.0.1:{dead[0]}\n"
        f"  - url: http://b@127.0.0.1:{dead[1]}\n    password_file: {secret_file}\n"
        f"fallback:\n  - url: socks5://c@127.0.0.1:{dead[2]}\n    password: ${{SECRET}}\n"
        f"  - socks5://d@127.0.0.1:{dead[3]}\n"
        "connect_timeout: 1\n"
    )
    monkeypatch.setenv("SECRET", SENTINEL)
    monkeypatch.setenv("BOT_FALLBACK__1__PASSWORD", SENTINEL)
    outputs = []
    for command in (["check"], ["show"], ["show", "--json"], ["probe"], ["schema"]):
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(command)
        outputs.append((command, code, stdout.getvalue() + stderr.getvalue()))
    assert [code for _, code, _ in outputs] == [0, 0, 0, 3, 0]
    for command, _, text in outputs:
        assert SENTINEL not in text, command
    assert "***" in outputs[1][2]
    monkeypatch.setenv("BOT_LIMIT", SENTINEL)  # a password put where it does not belong
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        assert main(["check"]) == 1
    assert "limit: expected a valid integer" in stderr.getvalue()
    assert SENTINEL not in stderr.getvalue()
    assert all(SENTINEL not in record.getMessage() for record in caplog.records)


async def test_fallback_switch_logs_never_show_the_password(
    bot_api: BotApiStandIn, proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The WARNING on a route switch and every DEBUG record mask the passwords of both routes."""

    caplog.set_level(logging.DEBUG)
    backup = proxy("socks5", "u", SENTINEL)
    primary = (f"socks5://127.0.0.1:{free_port()}", basic_auth("p", SENTINEL))
    session = build_session_from_config(
        proxy=primary, fallback=[backup.url()], api={"base": bot_api.base}
    )
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()
    switches = [r for r in caplog.records if r.name == "botsession"]
    assert switches
    assert all(SENTINEL not in record.getMessage() for record in caplog.records)


# --- models validated directly, whitespace in passwords, the new refusals -----------------


def direct_validations(tmp_path: Path) -> list[Callable[[], object]]:
    """Public models validated directly, each with the sentinel in a bad input."""
    from pydantic import SecretStr

    from botsession import ApiServer, BotSessionConfig, ProxyHop, ProxyRoute
    from botsession.config_schema import HopSpec

    url = f"socks6://u:{SENTINEL}@127.0.0.1:1"
    return [
        lambda: BotSessionConfig(proxy=url),
        lambda: BotSessionConfig(proxy={"url": "socks5://u@h:1", "password": [SENTINEL]}),
        lambda: BotSessionConfig(timeout=f"socks5://u:{SENTINEL}@h:1"),
        lambda: BotSessionConfig.model_validate({"fallback": [url]}),
        lambda: ProxyRoute.model_validate([url]),
        lambda: ProxyRoute.model_validate({"url": f"socks5://u:{SENTINEL}@h:1", "rdns": "maybe"}),
        lambda: ProxyHop.model_validate(url),
        lambda: ProxyHop.model_validate({"url": f"socks5://u:{SENTINEL} x@h:1"}),
        lambda: ProxyHop.model_validate(
            {"scheme": "socks5", "host": "h h", "port": 1, "rdns": True, "password": SENTINEL}
        ),
        lambda: HopSpec.model_validate({"url": url, "password": SENTINEL}),
        lambda: HopSpec(url=5, password=SecretStr(SENTINEL), rdns="maybe"),  # type: ignore[arg-type]
        lambda: ApiServer(base=f"https://u:{SENTINEL}@api.example"),
    ]


def test_models_validated_directly_never_echo_the_password(tmp_path: Path) -> None:
    """pydantic's own error text (input_value=…) is hidden by every public model."""
    from pydantic import ValidationError

    for number, validate in enumerate(direct_validations(tmp_path)):
        with pytest.raises(ValidationError) as caught:
            validate()
        texts = chain_texts(caught.value)
        assert all(SENTINEL not in text for text in texts), number
        assert "input_value" not in str(caught.value), number


WHITESPACE_PASSWORDS = [
    f"{SENTINEL} {SENTINEL}",
    f"{SENTINEL}\t{SENTINEL}",
    f"{SENTINEL}\n{SENTINEL}",
]


@pytest.mark.parametrize("password", WHITESPACE_PASSWORDS, ids=["space", "tab", "newline"])
@pytest.mark.parametrize("source", ["yaml", "env", "dotenv", "kwargs", "json-env", "timeout"])
def test_whitespace_in_a_url_password_never_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, password: str, source: str
) -> None:
    """A URL whose password holds a space, tab or line break is refused without showing it."""
    import json

    url = f"socks5://u:{password}@127.0.0.1:1080"
    overrides: dict[str, Any] = {}
    if source == "yaml":
        (tmp_path / "bot.yaml").write_text(f"proxy: {json.dumps(url)}\n")
    elif source == "env":
        monkeypatch.setenv("BOT_PROXY", url)
    elif source == "dotenv":
        (tmp_path / ".env").write_text(f"BOT_PROXY={json.dumps(url)}\n")
    elif source == "json-env":
        monkeypatch.setenv("BOT_FALLBACK", json.dumps([url]))
        overrides["proxy"] = "socks5://127.0.0.1:1"
    elif source == "timeout":  # a URL in the wrong place: shown as found, masked
        overrides["timeout"] = url
    else:
        overrides["proxy"] = [url]
    with pytest.raises(ConfigError) as caught:
        load_config(**overrides)
    expected = "expected a valid number" if source == "timeout" else "contains a space, tab"
    assert expected in str(caught.value)
    assert all(SENTINEL not in text for text in chain_texts(caught.value))


@pytest.mark.parametrize("password", WHITESPACE_PASSWORDS, ids=["space", "tab", "newline"])
def test_whitespace_passwords_in_separate_fields_are_masked_by_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    """A password field with whitespace is valid; check, show and show --json mask it."""
    import contextlib
    import io
    import json

    from botsession.cli import main

    (tmp_path / "bot.yaml").write_text(
        "proxy:\n  url: http://bot@127.0.0.1:3128\n  password: ${SECRET}\n"
        f"fallback:\n  - {json.dumps('http://x@127.0.0.1:1')}\n"
    )
    monkeypatch.setenv("SECRET", password)
    monkeypatch.setenv("BOT_FALLBACK__0__PASSWORD", password)
    for command in (["check"], ["show"], ["show", "--json"]):
        output = io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            assert main(command) == 0, output.getvalue()
        assert SENTINEL not in output.getvalue(), command
    assert load_config().routes[1][0].secret() == password


def test_new_refusals_never_show_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Oversized and FIFO password files, JSON duplicates and case clashes carry no password."""
    import os

    big = tmp_path / "big"
    big.write_text(SENTINEL * 10_000)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases: list[tuple[dict[str, str], dict[str, Any], str]] = [
        ({}, {"proxy": {"url": "http://u@h.example:1", "password_file": str(big)}}, "the limit"),
        ({}, {"proxy": {"url": "http://u@h.example:1", "password_file": str(fifo)}}, "FIFO"),
        (
            {"BOT_PROXY": f'{{"url": "http://u@h:1", "password": "{SENTINEL}", "password": "x"}}'},
            {},
            "the key 'password' appears twice",
        ),
        (
            {"BOT_PROXY__PASSWORD": SENTINEL, "bot_proxy__password": SENTINEL},
            {"proxy": "http://u@h:1"},
            "differ only in case",
        ),
        ({"BOT_PROXY__²__PASSWORD": SENTINEL}, {"proxy": ["http://h:1"]}, "digits 0 to 9"),
        ({"BOT_API__BASE": f"https://u:{SENTINEL}@api.example"}, {}, "without credentials"),
        ({"BOT_LIMIT": f"[{SENTINEL}"}, {}, "environment variable BOT_LIMIT: not valid JSON"),
    ]
    for environment, overrides, expected in cases:
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError) as caught:
            load_config(**overrides)
        assert expected in str(caught.value)
        assert all(SENTINEL not in text for text in chain_texts(caught.value)), expected
        for name in environment:
            monkeypatch.delenv(name)


def test_password_variables_that_look_like_json_stay_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BOT_PROXY__PASSWORD=[…] is a password, so a later problem still masks it."""
    (tmp_path / "bot.yaml").write_text("proxy: socks4://u@127.0.0.1:1\n")
    monkeypatch.setenv("BOT_PROXY__PASSWORD", f"[{SENTINEL}]")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert "socks4 has no passwords" in str(caught.value)
    assert all(SENTINEL not in text for text in chain_texts(caught.value))
