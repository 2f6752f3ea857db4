"""Sources, precedence, interpolation and located errors of ``load_config``."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from botsession import BotSessionConfig, BotSessionWarning, ConfigError, load_config
from botsession.factory import load_config_with_origins
from botsession.sources import yaml_file


def write(path: Path | str, text: str) -> Path:
    path = Path(path)
    path.write_text(text)
    return path


def problems(error: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [str(problem) for problem in error.value.problems]


def test_defaults_without_any_source() -> None:
    """With no file, variables or overrides the defaults give a direct session."""
    config = load_config()
    assert config == BotSessionConfig()
    assert (config.proxy, config.timeout, config.connect_timeout, config.limit) == (
        None,
        60,
        10,
        100,
    )
    assert (config.api.base, config.api.is_local, config.ssl.verify) == (
        "https://api.telegram.org",
        False,
        True,
    )


def test_reads_bot_yaml_in_the_working_directory() -> None:
    """./bot.yaml is read when no file is named."""
    write("bot.yaml", "proxy: socks5://127.0.0.1:1080\nlimit: 7\n")
    config = load_config()
    assert (str(config.proxy), config.limit) == ("socks5://127.0.0.1:1080", 7)


def test_bot_config_variable_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$BOT_CONFIG (prefix-aware) wins over ./bot.yaml."""
    write("bot.yaml", "limit: 1\n")
    other = write(tmp_path / "other.yaml", "limit: 2\n")
    monkeypatch.setenv("BOT_CONFIG", str(other))
    assert load_config().limit == 2
    monkeypatch.setenv("MYBOT_CONFIG", str(other))
    monkeypatch.setenv("MYBOT_LIMIT", "3")
    assert load_config(env_prefix="MYBOT_").limit == 3


def test_missing_named_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file named explicitly (argument or $BOT_CONFIG) must exist."""
    with pytest.raises(ConfigError, match=r"nope\.yaml: the config file does not exist"):
        load_config("nope.yaml")
    monkeypatch.setenv("BOT_CONFIG", "gone.yaml")
    with pytest.raises(
        ConfigError, match=r"gone.yaml: the config file does not exist \(named by \$BOT_CONFIG\)"
    ):
        load_config()


def test_precedence_override_env_dotenv_yaml_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyword overrides > environment > .env > YAML > defaults, each value on its own."""
    write(
        "bot.yaml",
        "timeout: 50\nconnect_timeout: 5\nlimit: 5\napi: {base: 'http://yaml.example'}\n",
    )
    write(".env", "BOT_CONNECT_TIMEOUT=4\nBOT_LIMIT=4\nBOT_API__BASE=http://dotenv.example\n")
    monkeypatch.setenv("BOT_LIMIT", "3")
    monkeypatch.setenv("BOT_API__BASE", "http://env.example")
    loaded = load_config_with_origins(api={"base": "http://override.example"})
    config = loaded.config
    assert (config.timeout, config.connect_timeout, config.limit) == (50, 4, 3)
    assert config.api.base == "http://override.example"
    assert loaded.origin_of(("timeout",)).label == "bot.yaml:1:10"
    assert loaded.origin_of(("connect_timeout",)).label == ".env:1 (BOT_CONNECT_TIMEOUT)"
    assert loaded.origin_of(("limit",)).label == "environment variable BOT_LIMIT"
    assert loaded.origin_of(("api", "base")).label == "keyword argument api="
    assert loaded.origin_of(("ssl", "verify")).kind == "default"


def test_env_proxy_url_replaces_yaml_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOT_PROXY as a URL replaces the whole route from YAML."""
    write("bot.yaml", "proxy:\n  - socks5://127.0.0.1:1\n  - http://127.0.0.1:2\n")
    monkeypatch.setenv("BOT_PROXY", "socks4a://127.0.0.1:3")
    assert str(load_config().proxy) == "socks4a://127.0.0.1:3"


def test_env_proxy_json_list_and_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOT_PROXY may be a JSON list (a chain) or a JSON object (one hop)."""
    monkeypatch.setenv(
        "BOT_PROXY", '["socks5://127.0.0.1:1", {"url": "http://u@127.0.0.1:2", "password": "p"}]'
    )
    config = load_config()
    assert config.proxy is not None
    assert [h.port for h in config.proxy] == [1, 2]
    assert config.proxy[1].secret() == "p"
    monkeypatch.setenv("BOT_PROXY", '{"url": "socks5://127.0.0.1:9", "rdns": false}')
    assert (
        load_config().proxy
        == load_config(proxy={"url": "socks5://127.0.0.1:9", "rdns": False}).proxy
    )


def test_env_null_proxy_means_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOT_PROXY=null switches a YAML route off."""
    write("bot.yaml", "proxy: socks5://127.0.0.1:1\n")
    monkeypatch.setenv("BOT_PROXY", "null")
    assert load_config().proxy is None


def test_nested_env_password_merges_into_yaml_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """URL in YAML plus BOT_PROXY__PASSWORD from the environment make one hop."""
    write("bot.yaml", "proxy: socks5://alice@127.0.0.1:1080\n")
    monkeypatch.setenv("BOT_PROXY__PASSWORD", "from-env")
    loaded = load_config_with_origins()
    assert loaded.config.proxy is not None
    (hop,) = loaded.config.proxy
    assert (hop.username, hop.secret()) == ("alice", "from-env")
    assert (
        loaded.origin_of(("proxy", "password")).label == "environment variable BOT_PROXY__PASSWORD"
    )
    assert loaded.origin_of(("proxy", "url")).label == "bot.yaml:1:8"


def test_nested_env_by_hop_index_merges_into_yaml_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOT_PROXY__1__PASSWORD sets the password of the second hop of a YAML chain."""
    write("bot.yaml", "proxy:\n  - socks5://127.0.0.1:1\n  - url: http://bob@127.0.0.1:2\n")
    monkeypatch.setenv("BOT_PROXY__1__PASSWORD", "second")
    config = load_config()
    assert config.proxy is not None
    assert [h.secret() for h in config.proxy] == [None, "second"]


def test_nested_env_without_index_on_a_chain_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hop field without a hop number is ambiguous on a chain and says how to fix it."""
    write("bot.yaml", "proxy:\n  - socks5://127.0.0.1:1\n  - http://127.0.0.1:2\n")
    monkeypatch.setenv("BOT_PROXY__PASSWORD", "x")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert problems(caught) == [
        "environment variable BOT_PROXY__PASSWORD: proxy: the proxy route from bot.yaml:2:3 is a 2-hop "
        "chain; say which hop these settings are for, e.g. BOT_PROXY__0__PASSWORD for the first hop"
    ]


def test_env_hop_index_out_of_range(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hop number past the end of the chain is reported with the valid range."""
    write("bot.yaml", "proxy: [socks5://127.0.0.1:1]\n")
    monkeypatch.setenv("BOT_PROXY__3__PASSWORD", "x")
    with pytest.raises(ConfigError, match=r"proxy\[3\]: there is no hop 3; hops are 0 to 0"):
        load_config()


def test_nested_env_builds_a_hop_without_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOT_PROXY__URL and BOT_PROXY__PASSWORD alone describe one hop."""
    monkeypatch.setenv("BOT_PROXY__URL", "http://carol@127.0.0.1:3128")
    monkeypatch.setenv("BOT_PROXY__PASSWORD", "pw")
    config = load_config()
    assert config.proxy is not None
    assert config.proxy[0].secret() == "pw"


def test_variables_of_the_bot_itself_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOT_TOKEN and other BOT_ variables that are not settings are left alone."""
    monkeypatch.setenv("BOT_TOKEN", "123:abc")
    monkeypatch.setenv("BOT_ADMIN_ID", "1")
    assert load_config() == BotSessionConfig()


def test_env_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    """bot_limit works as well as BOT_LIMIT."""
    monkeypatch.setenv("bot_limit", "9")
    assert load_config().limit == 9


def test_yaml_interpolation_with_and_without_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """${VAR} and ${VAR:-default} are expanded in YAML strings (a variable set empty is empty
    without a default); $${ is a literal ${, also where no '}' follows it."""
    monkeypatch.setenv("PROXY_PASSWORD", "p4ss")
    monkeypatch.setenv("EMPTY", "")
    write(
        "bot.yaml",
        "proxy:\n  url: socks5://alice@${PROXY_HOST:-127.0.0.1}:${PROXY_PORT:-1080}\n"
        "  password: ${PROXY_PASSWORD}${EMPTY}\n"
        "api:\n  base: http://${EMPTY:-fallback.example}/x$${y}$${z\n",
    )
    config = load_config()
    assert config.proxy is not None
    assert (str(config.proxy), config.proxy[0].secret()) == (
        "socks5://alice:***@127.0.0.1:1080",
        "p4ss",
    )
    assert config.api.base == "http://fallback.example/x${y}${z"


def test_yaml_interpolation_reads_dotenv_too() -> None:
    """${VAR} falls back to the .env file, as docker compose does."""
    write(".env", "PROXY_PORT=2080\n")
    write("bot.yaml", "proxy: socks5://127.0.0.1:${PROXY_PORT}\n")
    config = load_config()
    assert config.proxy is not None
    assert config.proxy[0].port == 2080


def test_undefined_variable_names_variable_and_place() -> None:
    """An undefined ${VAR} without default is an error naming the variable and where it was used."""
    write(
        "bot.yaml",
        "proxy:\n  url: socks5://alice@127.0.0.1:1080\n  password: ${NOT_SET_ANYWHERE}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert (
        "bot.yaml:3:13: proxy.password: ${NOT_SET_ANYWHERE} is not set and has no default"
        in problems(caught)[0]
    )


def test_yaml_relative_files_are_relative_to_the_yaml(tmp_path: Path) -> None:
    """password_file is found next to the YAML file, wherever the program runs."""
    folder = tmp_path / "conf"
    folder.mkdir()
    write(folder / "pw.txt", "secret\n")
    write(folder / "bot.yaml", "proxy:\n  url: socks5://u@127.0.0.1:1\n  password_file: pw.txt\n")
    config = load_config(folder / "bot.yaml")
    assert config.proxy is not None
    assert config.proxy[0].secret() == "secret"


def test_every_problem_at_once_with_locations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every problem is reported in one error, each with its source, path, expectation and
    finding, in the order they were written."""
    write(
        "bot.yaml",
        "proxy:\n"
        "  - socks5://127.0.0.1:1080\n"
        "  - url: socks6://127.0.0.1:1\n"
        "    pasword: x\n"
        "timeout: -1\n"
        "limt: 5\n"
        "ssl: {verify: maybe}\n",
    )
    monkeypatch.setenv("BOT_CONNECT_TIMEOUT", "soon")
    with pytest.raises(ConfigError) as caught:
        load_config(limit=0)
    assert problems(caught) == [
        "bot.yaml:3:10: proxy[1].url: unsupported protocol 'socks6'; expected one of http, https, socks4, socks4a, socks5 (or socks5h)",
        "bot.yaml:4:5: proxy[1].pasword: unknown setting 'pasword'; did you mean 'password'?",
        "bot.yaml:5:10: timeout: expected greater than 0, found -1",
        "bot.yaml:6:1: limt: unknown setting 'limt'; did you mean 'limit'?",
        "bot.yaml:7:15: ssl.verify: expected a valid boolean, unable to interpret input, found 'maybe'",
        "environment variable BOT_CONNECT_TIMEOUT: connect_timeout: expected a valid number, unable to parse string as a number, found 'soon'",
        "keyword argument limit=: limit: expected greater than or equal to 1, found 0",
    ]
    assert str(caught.value).startswith(
        "invalid botsession configuration (7 problems):\n  - bot.yaml:3:10"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "proxy: [socks5://127.0.0.1:1\n",
            "bot.yaml:2:1: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence that starts at bot.yaml:1:8)",
        ),
        (
            "proxy: !!python/object/apply:os.system ['true']\n",
            "bot.yaml:1:8: proxy: the YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
        ),
        (
            "limit: 1\nlimit: 2\n",
            "bot.yaml:2:1: limit: duplicate key 'limit'; it is also set at bot.yaml:1:1",
        ),
        ("- just\n- a list\n", "bot.yaml:1:1: the top level must be a mapping of settings"),
        ("!foo {limit: 1}\n", "bot.yaml:1:1: the YAML tag '!foo' is not allowed in a config"),
        ("1: one\n", "bot.yaml:1:1: mapping keys must be plain strings"),
        ("!foo a: one\n", "bot.yaml:1:1: mapping keys must be plain strings"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
            "the document expands to more than 10000 values",
        ),
        (
            "api:\n  base: 'http://x'\n  is_local: yes please\n",
            "bot.yaml:3:13: api.is_local: expected a valid boolean",
        ),
        (
            "api:\n  bse: 'http://x'\n",
            "bot.yaml:2:3: api.bse: unknown setting 'bse'; did you mean 'base'?",
        ),
        (
            "ssl:\n  ca_file: missing.pem\n",
            "bot.yaml:2:12: ssl.ca_file: Path does not point to a file, found 'missing.pem'",
        ),
        (
            "connect_timeout: 90\n",
            "bot.yaml:1:18: connect_timeout: connect_timeout must not exceed timeout (60 s)",
        ),
        (
            "api: {base: 'ftp://x'}\n",
            "bot.yaml:1:13: api.base: expected an http:// or https:// base URL",
        ),
        ("proxy: ${BROKEN\n", "bot.yaml:1:8: proxy: no protocol"),
        ("proxy: ${1BAD}\n", "bot.yaml:1:8: proxy: '${1BAD}' is not a valid variable reference"),
    ],
)
def test_yaml_errors_are_located(text: str, expected: str) -> None:
    """YAML syntax, unsafe tags, duplicates, shapes and values are reported at file:line:col."""
    write("bot.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert any(expected in line for line in problems(caught)), problems(caught)


@pytest.mark.parametrize(
    ("loader", "expected"),
    [
        (
            "CSafeLoader",
            [
                "bot.yaml:2:1: YAML syntax error: a tab character; YAML indents with spaces only, so "
                "replace the tab with spaces",
                "bot.yaml:1:4: YAML syntax error: found undefined alias",
                "bot.yaml: not a text file: control characters are not allowed at character 10",
            ],
        ),
        (
            "SafeLoader",
            [
                "bot.yaml:2:1: YAML syntax error: a tab character; YAML indents with spaces only, so "
                "replace the tab with spaces",
                "bot.yaml:1:4: YAML syntax error: found undefined alias 'x'",
                "bot.yaml: not a text file: special characters are not allowed at character 10",
            ],
        ),
    ],
    ids=["libyaml", "pure-python"],
)
def test_yaml_errors_are_reported_with_or_without_libyaml(
    loader: str, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With libyaml or with PyYAML's own loader (used where libyaml is missing), a syntax error
    is one problem at file:line:col (a tab called a tab), with its context where the loader
    gives it a place, and a control character one problem of the file, naming its place counted
    in characters from 1."""
    monkeypatch.setattr(yaml_file, "_Loader", getattr(yaml, loader))
    found = []
    for text in ("proxy:\n\tsocks5://127.0.0.1:1\n", "a: *x\n", "proxy: éé\x01\n"):
        write("bot.yaml", text)
        with pytest.raises(ConfigError) as caught:
            load_config()
        found += problems(caught)
    assert found == expected


def test_empty_yaml_file_configures_nothing() -> None:
    """An empty bot.yaml is valid and means defaults."""
    write("bot.yaml", "# nothing yet\n")
    assert load_config() == BotSessionConfig()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "BOT_PROXY",
            '["socks5://127.0.0.1:1",',
            "environment variable BOT_PROXY: not valid JSON: Expecting value at line 1 column 25",
        ),
        ("BOT_PROXY", "", "environment variable BOT_PROXY: proxy: the proxy URL is empty"),
        ("BOT_LIMIT", "many", "environment variable BOT_LIMIT: limit: expected a valid integer"),
        (
            "BOT_PROXY__PASWORD",
            "x",
            "environment variable BOT_PROXY__PASWORD: proxy.pasword: unknown setting 'pasword'; did you mean 'password'?",
        ),
        ("BOT_API__", "x", "environment variable BOT_API__: '__' must separate two key names"),
        (
            "BOT_SSL__VERIFY",
            "sometimes",
            "environment variable BOT_SSL__VERIFY: ssl.verify: expected a valid boolean",
        ),
        (
            "BOT_PROXY__0__PASSWORD",
            "x",
            "environment variable BOT_PROXY__0__PASSWORD: proxy: settings for hop numbers need a proxy chain",
        ),
    ],
)
def test_env_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    """Malformed environment values are reported with the variable's name."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert any(expected in line for line in problems(caught)), problems(caught)


def test_unknown_override_is_an_error() -> None:
    """A misspelt keyword argument is reported with a suggestion, not ignored."""
    with pytest.raises(
        ConfigError,
        match="keyword argument timout=: timout: unknown setting 'timout'; did you mean 'timeout'",
    ):
        load_config(timout=5)


def test_loaded_config_can_be_reloaded_with_overrides() -> None:
    """An already loaded config is accepted and overrides still apply."""
    write("bot.yaml", "proxy: socks5://127.0.0.1:1\nlimit: 5\n")
    first = load_config()
    second = load_config(first, limit=6)
    assert (second.proxy, second.limit) == (first.proxy, 6)
    assert load_config(first) == first


def test_dotenv_file_can_be_named(tmp_path: Path) -> None:
    """env_file names a dotenv file; a named one that is missing is an error."""
    env = write(tmp_path / "prod.env", "BOT_LIMIT=12\n")
    assert load_config(env_file=env).limit == 12
    with pytest.raises(ConfigError, match=r"missing\.env: cannot read"):
        load_config(env_file="missing.env")


def test_the_config_is_immutable() -> None:
    """The loaded configuration cannot be changed in place."""
    config = load_config()
    with pytest.raises(ValueError, match="frozen"):
        config.limit = 5  # type: ignore[misc]


def test_plain_aiohttp_path_does_not_load_aiogram() -> None:
    """build_client_session works without importing aiogram."""
    code = (
        "import asyncio, sys, botsession\n"
        "async def main():\n"
        "    async with botsession.build_client_session(proxy='socks5://127.0.0.1:1') as s:\n"
        "        print(type(s.connector).__name__, s.connector.limit, 'aiogram' in sys.modules)\n"
        "asyncio.run(main())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "RouteConnector 100 False"


def test_import_does_not_load_aiogram() -> None:
    """import botsession and load_config leave aiogram (seconds to import) unloaded."""
    code = (
        "import sys, botsession; botsession.load_config(proxy='socks5://127.0.0.1:1');"
        "print('aiogram' in sys.modules, 'aiohttp' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert result.stdout.strip() == "False False"
    assert " aiogram" not in result.stderr


def test_unreadable_files_are_reported(tmp_path: Path) -> None:
    """A directory, a binary file and a file over 1 MiB are refused with the reason."""
    (tmp_path / "dir.yaml").mkdir()
    write(tmp_path / "binary.yaml", "")
    (tmp_path / "binary.yaml").write_bytes(b"\x00\xff\xfe binary")
    (tmp_path / "big.yaml").write_text("# " + "x" * (1024 * 1024) + "\n")
    with pytest.raises(ConfigError, match=r"dir\.yaml: the config file is a directory"):
        load_config(tmp_path / "dir.yaml")
    with pytest.raises(
        ConfigError, match=r"binary\.yaml: not UTF-8 text \(byte 1 is invalid\); is it binary\?"
    ):
        load_config(tmp_path / "binary.yaml")
    with pytest.raises(
        ConfigError,
        match=r"big\.yaml: the config file is 1048579 bytes; the limit is 1048576 bytes \(1 MiB\)",
    ):
        load_config(tmp_path / "big.yaml")


# --- one mistake, one problem (issue #19) ------------------------------------------------


def test_an_unset_variable_in_a_password_is_one_problem() -> None:
    """An unset ${VAR} as a socks5 password is reported once, not also as an empty password."""
    write(
        "bot.yaml",
        "proxy:\n  url: socks5://alice@127.0.0.1:1080\n  password: ${NOT_SET_ANYWHERE}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert problems(caught) == [
        "bot.yaml:3:13: proxy.password: ${NOT_SET_ANYWHERE} is not set and has no default "
        "(${NOT_SET_ANYWHERE:-…})"
    ]


def test_an_unset_variable_in_a_url_or_a_number_is_one_problem_each() -> None:
    """An unset ${VAR} in a URL's password or in a number is one problem each, nothing more."""
    write("bot.yaml", "proxy: socks5://bob:${NO_PASSWORD}@127.0.0.1:1080\nlimit: ${NO_LIMIT}\n")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert problems(caught) == [
        "bot.yaml:1:8: proxy: ${NO_PASSWORD} is not set and has no default (${NO_PASSWORD:-…})",
        "bot.yaml:2:8: limit: ${NO_LIMIT} is not set and has no default (${NO_LIMIT:-…})",
    ]


def test_an_overridden_value_with_an_unset_variable_is_not_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file value with an unset ${VAR} that a keyword argument or a variable replaces is
    not an error: the value in effect is valid."""
    write(
        "bot.yaml",
        "proxy:\n  url: socks5://alice@127.0.0.1:1080\n  password: ${NOT_SET_ANYWHERE}\n"
        "limit: ${NO_LIMIT}\n",
    )
    config = load_config(proxy="socks5://127.0.0.1:9050", limit=3)
    assert (str(config.proxy), config.limit) == ("socks5://127.0.0.1:9050", 3)
    with_mapping = load_config(proxy={"url": "http://127.0.0.1:3128"}, limit=3).proxy
    assert with_mapping is not None
    # A whole hop given as a mapping is a new route: the file's user name does not carry over.
    assert (str(with_mapping), with_mapping[0].secret()) == ("http://127.0.0.1:3128", None)
    monkeypatch.setenv("BOT_PROXY__PASSWORD", "from-the-environment")
    monkeypatch.setenv("BOT_LIMIT", "4")
    route = load_config().proxy
    assert route is not None
    assert route[0].secret() == "from-the-environment"


def test_build_session_from_config_with_a_proxy_override_ignores_the_files_proxy() -> None:
    """build_session_from_config(proxy=…) builds over a file whose proxy has an unset ${VAR}."""
    from botsession import build_session_from_config

    write("bot.yaml", "proxy: socks5://bob:${NO_PASSWORD}@127.0.0.1:1080\n")
    session = build_session_from_config(proxy="socks5://127.0.0.1:9050")
    assert "ProxyRoute('socks5://127.0.0.1:9050')" in repr(session)


def test_an_unset_variable_in_a_profile_not_chosen_is_not_reported() -> None:
    """Only the chosen profile's values count: an unset ${VAR} in another one is no problem."""
    write(
        "bot.yaml",
        "default_profile: main\nprofiles:\n  main: {limit: 5}\n  other: {limit: '${NOPE}'}\n",
    )
    assert load_config().limit == 5
    with pytest.raises(ConfigError) as caught:
        load_config(profile="other")
    assert problems(caught) == [
        "bot.yaml:4:18: profiles.other.limit: ${NOPE} is not set and has no default (${NOPE:-…})"
    ]


# --- near misses of variable names (issue #19) ---------------------------------------------


def test_a_variable_one_edit_from_a_setting_warns_at_the_callers_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """BOT_LIMT warns (at the caller's line) that it is ignored and names BOT_LIMIT; names far
    from every setting (BOT_TOKEN) stay silent."""
    monkeypatch.setenv("BOT_LIMT", "5")
    monkeypatch.setenv("BOT_PROXI__PASSWORD", "x")
    monkeypatch.setenv("BOT_TIEMOUT", "5")  # two letters swapped
    monkeypatch.setenv("BOT_TOKEN", "123:abc")
    monkeypatch.setenv("BOT_APP", "x")  # one edit from "api", but too short to guess at
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = load_config()
    assert config.limit == 100
    assert sorted(str(warning.message) for warning in caught) == [
        "environment variable BOT_LIMT is ignored: no botsession setting is called LIMT; "
        "did you mean BOT_LIMIT?",
        "environment variable BOT_PROXI__PASSWORD is ignored: no botsession setting is called "
        "PROXI; did you mean BOT_PROXY__PASSWORD?",
        "environment variable BOT_TIEMOUT is ignored: no botsession setting is called TIEMOUT; "
        "did you mean BOT_TIMEOUT?",
    ]
    assert {warning.category for warning in caught} == {BotSessionWarning}
    assert {warning.filename for warning in caught} == {__file__}


def test_near_misses_follow_the_prefix_and_the_dotenv_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With env_prefix MYBOT_ a MYBOT_TIMEOUTT warns and a BOT_LIMT is no concern; a .env line
    is named by its file and line."""
    monkeypatch.setenv("MYBOT_TIMEOUTT", "5")
    monkeypatch.setenv("BOT_LIMT", "5")
    write(".env", "OTHER=1\nMYBOT_FALBACK=[]\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_config(env_prefix="MYBOT_")
    assert sorted(str(warning.message) for warning in caught) == [
        ".env:2 (MYBOT_FALBACK) is ignored: no botsession setting is called FALBACK; did you "
        "mean MYBOT_FALLBACK?",
        "environment variable MYBOT_TIMEOUTT is ignored: no botsession setting is called "
        "TIMEOUTT; did you mean MYBOT_TIMEOUT?",
    ]


# --- where problems are, in order (issue #19) -----------------------------------------------


def test_a_tab_in_yaml_is_called_a_tab_at_its_line_and_column() -> None:
    """A tab indenting a line is a problem that says "tab", at the tab's line and column."""
    write("bot.yaml", "api:\n\tbase: http://127.0.0.1\n")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert problems(caught) == [
        "bot.yaml:2:1: YAML syntax error: a tab character; YAML indents with spaces only, so "
        "replace the tab with spaces"
    ]


def test_problems_are_listed_by_file_line_and_column(monkeypatch: pytest.MonkeyPatch) -> None:
    """Problems come in the order they were written (file, line, column; then the
    environment), whichever check found them: a duplicate key on line 3 after a bad limit on
    line 1."""
    write("bot.yaml", "limit: 0\ntimeout: 30\ntimeout: 40\n")
    monkeypatch.setenv("BOT_CONNECT_TIMEOUT", "soon")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert [problem.where for problem in caught.value.problems] == [
        "bot.yaml:1:8",
        "bot.yaml:3:1",
        "environment variable BOT_CONNECT_TIMEOUT",
    ]


def test_an_env_prefix_without_its_underscore_is_refused() -> None:
    """env_prefix="MYBOT" is refused with a sentence that gives "MYBOT_" instead."""
    with pytest.raises(ConfigError) as caught:
        load_config(env_prefix="MYBOT")
    assert problems(caught) == [
        "keyword argument env_prefix=: the prefix 'MYBOT' does not end with '_': the variables "
        "would be named MYBOTPROXY, MYBOTLIMIT, …; give 'MYBOT_' for MYBOT_PROXY"
    ]
    assert load_config(env_prefix="MYBOT_").limit == 100


def test_warnings_about_the_configuration_point_at_the_callers_line() -> None:
    """A BotSessionWarning raised while loading names this file as where it happened."""
    chain = ["socks4://127.0.0.1:1080", "socks5://relay.example:1080"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_config(proxy=chain)
        load_config(proxy={"socks5://127.0.0.1:1080"})
    assert [warning.category for warning in caught] == [BotSessionWarning, BotSessionWarning]
    assert [warning.filename for warning in caught] == [__file__, __file__]
