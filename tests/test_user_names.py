"""User names are printable text: a control character is refused at load, in every form, and
shown escaped; what botsession prints of a user name never holds one raw."""

from __future__ import annotations

import contextlib
import io
import json
import os
import unicodedata
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from botsession import BotSessionConfig, ConfigError, ProxyHop, load_config
from botsession.cli import main as cli_main
from botsession.factory import load_outcome

from .support import basic_auth

# As in test_hardening: 150 examples in the suite, 5,000 with HYPOTHESIS_PROFILE=thorough.
EXAMPLES = 5000 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 150
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

NUL_IN_SOCKS4A = (
    "a socks4a user id cannot contain the control character '\\x00' (U+0000) at character 3: "
    "the user id ends at the first NUL, so the proxy would take the rest for the host to "
    "connect to"
)


def unprintable(text: str) -> list[str]:
    """The characters of ``text`` that a terminal or log would act on instead of showing."""
    return [
        char
        for char in text
        if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp")
        or char in "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    ]


def problem_lines(error: ConfigError) -> list[str]:
    return [str(problem) for problem in error.problems]


def assert_shown_escaped(error: ConfigError, expected: str) -> None:
    """The one problem says what is wrong, with the character escaped, and holds none raw."""
    lines = problem_lines(error)
    assert any(expected in line for line in lines), lines
    assert not [line for line in lines if unprintable(line)]
    assert not unprintable(repr(error))
    assert not [c for c in str(error) if c != "\n" and unprintable(c)]


# --- every scheme -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("socks4://ab%00c@127.0.0.1:1080", "a socks4 user id cannot contain the control "
         "character '\\x00' (U+0000) at character 3: the user id ends at the first NUL, so the "
         "proxy would take the rest for data to send through the tunnel"),
        ("socks4a://ab%00evil.example@127.0.0.1:1080", NUL_IN_SOCKS4A),
        ("socks4a://ab%0A@127.0.0.1:1080", "a socks4a user id cannot contain the control "
         "character '\\n' (U+000A) at character 3"),
        ("socks5://ab%0Ac:pw@127.0.0.1:1080", "a socks5 user name cannot contain the control "
         "character '\\n' (U+000A) at character 3"),
        ("socks5://%C2%9Bc:pw@127.0.0.1:1080", "a socks5 user name cannot contain the control "
         "character '\\x9b' (U+009B) at character 1"),
        ("http://a%1B%5B2Jb:pw@127.0.0.1:3128", "an http proxy user name cannot contain the "
         "control character '\\x1b' (U+001B) at character 2"),
        ("https://ab%7F:pw@127.0.0.1:3128", "an https proxy user name cannot contain the control "
         "character '\\x7f' (U+007F) at character 3"),
        ("http://ab%C2%85:pw@127.0.0.1:3128", "an http proxy user name cannot contain the "
         "control character '\\x85' (U+0085) at character 3"),
        ("http://%E2%80%AEnimda:pw@127.0.0.1:3128", "an http proxy user name cannot contain the "
         "bidirectional formatting character '\\u202e' (U+202E) at character 1"),
        ("https://a%E2%80%A8b:pw@127.0.0.1:3128", "an https proxy user name cannot contain the "
         "line separator '\\u2028' (U+2028) at character 2"),
        ("http://ab%00:pw@127.0.0.1:3128", "an http proxy user name cannot contain the control "
         "character '\\x00' (U+0000) at character 3"),
    ],
)  # fmt: skip
def test_every_scheme_refuses_a_control_character_in_the_user_name(url: str, expected: str) -> None:
    """Each scheme's user name (socks4/4a user id, socks5 RFC 1929 name, http/https Basic user)
    refuses control characters, and the message shows the character escaped."""
    with pytest.raises(ConfigError) as caught:
        load_config(proxy=url)
    assert_shown_escaped(caught.value, expected)
    assert problem_lines(caught.value)[0].startswith("keyword argument proxy=: proxy: ")


@pytest.mark.parametrize(
    "url",
    [
        "socks4a://bob-42@127.0.0.1:1080",
        "socks4://bob%20smith@127.0.0.1:1080",
        "socks5://bob%40corp:pw@127.0.0.1:1080",
        "http://Jos%C3%A9%20Garc%C3%ADa:pw@127.0.0.1:3128",
        "https://%E7%94%A8%E6%88%B7:pw@127.0.0.1:3128",
    ],
)
def test_printable_user_names_are_accepted(url: str) -> None:
    """Spaces, '@' (percent-encoded) and, over http/https, any printable Unicode stay valid."""
    hop = load_config(proxy=url).proxy[0]  # type: ignore[index]
    assert hop.username is not None
    assert not unprintable(hop.label() + repr(hop) + str(hop))


# --- every form ---------------------------------------------------------------------------------


def test_a_yaml_mapping_username(tmp_path: Path) -> None:
    """A YAML double-quoted escape ("\\0") in the mapping form's username, located by line."""
    (tmp_path / "bot.yaml").write_text(
        'proxy:\n  url: socks4a://127.0.0.1:1080\n  username: "ab\\0evil.example"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert_shown_escaped(caught.value, f"bot.yaml:3:13: proxy.username: {NUL_IN_SOCKS4A}")


def test_a_yaml_url_and_a_fallback_route(tmp_path: Path) -> None:
    """A percent-encoded NUL in a YAML URL, in the primary route and in a fallback route."""
    (tmp_path / "bot.yaml").write_text(
        "proxy: socks4a://ab%00evil.example@127.0.0.1:1080\n"
        "fallback:\n  - [socks5://127.0.0.1:1, socks4a://ab%00evil.example@127.0.0.1:2]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config()
    lines = problem_lines(caught.value)
    assert lines == [
        f"bot.yaml:1:8: proxy: {NUL_IN_SOCKS4A}",
        f"bot.yaml:3:28: fallback[0][1]: {NUL_IN_SOCKS4A}",
    ]


def test_python_mapping_and_basic_auth_forms() -> None:
    """A username keyword in a mapping, and aiohttp's BasicAuth login in (url, auth)."""
    with pytest.raises(ConfigError) as caught:
        load_config(proxy={"url": "socks4a://127.0.0.1:1080", "username": "ab\x00evil.example"})
    assert_shown_escaped(caught.value, f"proxy.username: {NUL_IN_SOCKS4A}")
    with pytest.raises(ConfigError) as caught:
        load_config(proxy=("http://127.0.0.1:3128", basic_auth("a\x1b[2Jb", "pw")))
    assert_shown_escaped(
        caught.value,
        "an http proxy user name cannot contain the control character '\\x1b' (U+001B) at "
        "character 2",
    )


def test_a_telegram_link_user() -> None:
    """A Telegram SOCKS5 link's user=, percent-decoded, is a socks5 user name."""
    link = "https://t.me/socks?server=127.0.0.1&port=1080&user=ab%0D%0Ac&pass=pw"
    with pytest.raises(ConfigError) as caught:
        load_config(proxy=link)
    assert_shown_escaped(
        caught.value,
        "a socks5 user name cannot contain the control character '\\r' (U+000D) at character 3",
    )


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOT_PROXY__USERNAME, JSON in BOT_PROXY, and a URL in BOT_FALLBACK."""
    monkeypatch.setenv("BOT_PROXY", "socks5://127.0.0.1:1080")
    monkeypatch.setenv("BOT_PROXY__USERNAME", "ab\x1b]0;owned\x07")
    monkeypatch.setenv("BOT_PROXY__PASSWORD", "pw")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert_shown_escaped(
        caught.value,
        "environment variable BOT_PROXY__USERNAME: proxy.username: a socks5 user name cannot "
        "contain the control character '\\x1b' (U+001B) at character 3",
    )
    monkeypatch.delenv("BOT_PROXY__USERNAME")
    monkeypatch.delenv("BOT_PROXY__PASSWORD")
    hop = {"url": "socks4a://127.0.0.1:1080", "username": "ab\x00evil.example"}
    monkeypatch.setenv("BOT_PROXY", json.dumps(hop))
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert_shown_escaped(caught.value, f"proxy.username: {NUL_IN_SOCKS4A}")
    monkeypatch.setenv("BOT_PROXY", "socks5://127.0.0.1:1")
    monkeypatch.setenv("BOT_FALLBACK", json.dumps(["socks4a://ab%00evil.example@127.0.0.1:2"]))
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert_shown_escaped(
        caught.value, f"environment variable BOT_FALLBACK: fallback[0]: {NUL_IN_SOCKS4A}"
    )


def test_a_variable_that_is_not_utf_8(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user name variable holding bytes that are not UTF-8 (Python reads them as lone
    surrogates) is refused at load rather than failing to encode at the first connection."""
    monkeypatch.setenv("BOT_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("BOT_PROXY__USERNAME", "ab\udcff")  # the byte 0xff, surrogate-escaped
    monkeypatch.setenv("BOT_PROXY__PASSWORD", "pw")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert_shown_escaped(
        caught.value,
        "an http proxy user name cannot contain the lone surrogate '\\udcff' (U+DCFF) at "
        "character 3",
    )


def test_a_dotenv_line(tmp_path: Path) -> None:
    """BOT_PROXY in .env with a percent-encoded NUL."""
    (tmp_path / ".env").write_text("BOT_PROXY=socks4a://ab%00evil.example@127.0.0.1:1080\n")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert_shown_escaped(caught.value, f".env:1 (BOT_PROXY): proxy: {NUL_IN_SOCKS4A}")


def test_the_standard_proxy_variables_with_trust_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS_PROXY taken by trust_env is checked like any other route."""
    monkeypatch.setenv("BOT_TRUST_ENV", "true")
    monkeypatch.setenv("HTTPS_PROXY", "http://a%1Bb:pw@127.0.0.1:3128")
    for name in ("https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert_shown_escaped(
        caught.value,
        "environment variable HTTPS_PROXY (trust_env): proxy: an http proxy user name cannot "
        "contain the control character '\\x1b' (U+001B) at character 2",
    )


def test_the_canonical_hop_mapping() -> None:
    """ProxyHop's own fields (scheme, host, port, …) get the same check as every other form."""
    fields = {"scheme": "socks4a", "host": "127.0.0.1", "port": 1080, "rdns": True}
    with pytest.raises(ValidationError) as caught:
        ProxyHop.model_validate({**fields, "username": "ab\x00evil.example"})
    (error,) = caught.value.errors()
    assert (error["loc"], error["msg"]) == (("username",), NUL_IN_SOCKS4A)
    with pytest.raises(ValidationError) as caught:
        ProxyHop.model_validate({**fields, "scheme": "socks5", "username": "a\nb", "password": "p"})
    assert "a socks5 user name cannot contain the control character '\\n'" in str(caught.value)


class App(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MYAPP_", env_nested_delimiter="__")

    telegram: BotSessionConfig = BotSessionConfig.model_construct()


def test_an_embedded_config_and_the_model_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """BotSessionConfig() and an application's settings holding it refuse the same name."""
    monkeypatch.setenv("MYAPP_TELEGRAM__PROXY", "socks4a://ab%00evil.example@127.0.0.1:1080")
    with pytest.raises(ValidationError) as caught:
        App()
    (error,) = caught.value.errors()
    assert (error["loc"][:2], error["msg"]) == (("telegram", "proxy"), NUL_IN_SOCKS4A)
    assert not unprintable(str(caught.value).replace("\n", " "))
    with pytest.raises(ValidationError) as caught:
        BotSessionConfig(proxy="socks4a://ab%00evil.example@127.0.0.1:1080")
    assert NUL_IN_SOCKS4A in str(caught.value)


def test_the_cli_prints_the_character_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """botsession check and show exit 1 and print the name's control character escaped."""
    (tmp_path / "bot.yaml").write_text("proxy: http://a%1B%5B2Jb:pw@127.0.0.1:3128\n")
    for command in ("check", "show"):
        assert cli_main([command, str(tmp_path / "bot.yaml")]) == 1
        output = capsys.readouterr()
        assert "control character '\\x1b' (U+001B) at character 2" in output.err
        assert "\x1b" not in output.out + output.err


# --- whatever the name: nothing printed holds a control character raw ----------------------


@HYPOTHESIS
@given(
    scheme=st.sampled_from(["socks4", "socks4a", "socks5", "http", "https"]),
    name=st.text(min_size=1, max_size=12),
)
def test_nothing_printed_of_any_user_name_holds_an_unprintable_character(
    scheme: str, name: str
) -> None:
    """Any user name is refused by a message that holds no raw unprintable character, or is
    accepted and then shown by label, repr, str and botsession show without one."""
    password = "" if scheme.startswith("socks4") else ":pw"
    url = f"{scheme}://{quote(name, safe='')}{password}@127.0.0.1:1080"
    Path("bot.yaml").write_text(f"proxy: {json.dumps(url)}\n")  # the test's own directory
    shown, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(shown), contextlib.redirect_stderr(errors):
        status = cli_main(["show"])
    assert not [
        line for line in (shown.getvalue() + errors.getvalue()).splitlines() if unprintable(line)
    ]
    outcome = load_outcome()
    if isinstance(outcome, ConfigError):
        assert status == 1
        assert not [line for line in problem_lines(outcome) if unprintable(line)]
        return
    assert status == 0
    hop = outcome.config.proxy[0]  # type: ignore[index]
    shown_by_python = hop.label() + repr(hop) + str(hop) + repr(outcome.config)
    assert not unprintable(shown_by_python + str(outcome.config.proxy))
