"""Strict reading of values: bounded files, DNS-valid hosts, plain numbers, literal passwords."""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest

from botsession import BotSessionConfig, BotSessionWarning, ConfigError, load_config
from botsession.config_schema import LocalLookup, names_resolved_locally
from botsession.factory import load_config_with_origins
from botsession.sources.yaml_file import read_yaml

from .support import PATIENT, bounded_work


def problems(caught: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [str(problem) for problem in caught.value.problems]


def write(path: Path | str, text: str) -> Path:
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    return path


def quickly(call: Any) -> Any:
    """Run ``call`` in a thread; fail (rather than hang the suite) if it blocks. It takes
    milliseconds: a wait for a FIFO's writer or for the end of /dev/zero would never end."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed back to the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(PATIENT)
    assert not thread.is_alive(), f"blocked for more than {PATIENT:g} seconds"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


# --- bounded reads ---------------------------------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("fifo", "the config file is a named pipe (FIFO), not a regular file"),
        ("device", "the config file is a character device, not a regular file"),
        ("directory", "the config file is a directory"),
        ("huge", "the config file is 2000000 bytes; the limit is 1048576 bytes (1 MiB)"),
        ("missing", "cannot read the config file: No such file or directory"),
    ],
)
def test_read_yaml_refuses_anything_but_a_small_regular_file(
    tmp_path: Path, fifo: Path, kind: str, message: str
) -> None:
    """read_yaml itself refuses a FIFO (without blocking), a device, a directory, a huge file."""
    paths = {
        "fifo": fifo,
        "device": Path("/dev/zero"),
        "directory": tmp_path,
        "huge": tmp_path / "huge.yaml",
        "missing": tmp_path / "missing.yaml",
    }
    (tmp_path / "huge.yaml").write_bytes(b"#" * 2_000_000)
    layer = quickly(lambda: read_yaml(paths[kind], "bot.yaml", {}))
    assert [str(problem) for problem in layer.problems] == [f"bot.yaml: {message}"]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("fifo", "the config file"),
        ("/dev/zero", "the config file"),
        ("huge", "the config file is 2000000 bytes; the limit is 1048576 bytes (1 MiB)"),
        ("long", "cannot read the config file: File name too long"),
    ],
)
def test_bot_config_naming_anything_is_a_config_error_at_once(
    tmp_path: Path, fifo: Path, monkeypatch: pytest.MonkeyPatch, target: str, message: str
) -> None:
    """$BOT_CONFIG naming a FIFO, a device, a huge file or an impossible name fails at once."""
    (tmp_path / "huge").write_bytes(b"#" * 2_000_000)
    named = {"fifo": str(fifo), "huge": "huge", "long": "x" * 300}.get(target, target)
    monkeypatch.setenv("BOT_CONFIG", named)
    with pytest.raises(ConfigError) as caught:
        quickly(load_config)
    [problem] = caught.value.problems
    assert problem.where == named
    assert message in problem.message


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("fifo", "the dotenv file is a named pipe (FIFO), not a regular file"),
        ("/dev/urandom", "the dotenv file is a character device, not a regular file"),
        (".", "the dotenv file is a directory"),
        ("huge.env", "the dotenv file is 1100000 bytes; the limit is 1048576 bytes (1 MiB)"),
    ],
)
def test_env_file_must_be_a_small_regular_file(
    tmp_path: Path, fifo: Path, target: str, message: str
) -> None:
    """env_file naming a FIFO, a device, a directory or a huge file is a ConfigError at once."""
    write(tmp_path / "huge.env", "# " + "x" * 1_099_997 + "\n")
    name = str(fifo) if target == "fifo" else target
    with pytest.raises(ConfigError) as caught:
        quickly(lambda: load_config(env_file=name))
    assert problems(caught) == [f"{name}: {message}"]


def test_password_file_fifo_does_not_block(tmp_path: Path, fifo: Path) -> None:
    """A password_file that is a FIFO nobody writes to is refused at once."""
    hop = {"url": "socks5://bot@127.0.0.1:1", "password_file": str(fifo)}
    with pytest.raises(ConfigError) as caught:
        quickly(lambda: load_config(proxy=hop))
    assert problems(caught) == [
        "keyword argument proxy=: proxy.password_file: the password file is a named pipe "
        "(FIFO), not a regular file"
    ]


def test_password_file_up_to_64_kib_is_read(tmp_path: Path) -> None:
    """A password file of exactly 64 KiB is fine; one byte more is refused, naming the limit."""
    path = tmp_path / "pw"
    path.write_bytes(b"p" * 65536)
    hop = {"url": "http://bot@127.0.0.1:1", "password_file": str(path)}
    route = load_config(proxy=hop).proxy
    assert route is not None
    assert route[0].secret() == "p" * 65536
    path.write_bytes(b"p" * 65537)
    with pytest.raises(ConfigError, match=r"is 65537 bytes; the limit is 65536 bytes \(64 KiB\)"):
        load_config(proxy=hop)


# --- host names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "host"),
    [
        ("straße.de", "xn--strae-oqa.de"),  # IDNA 2008; IDNA 2003 would give strasse.de
        ("Straße.DE", "xn--strae-oqa.de"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\u3002org", "example.org"),  # full width
        ("Proxy.Example", "proxy.example"),
        ("PROXY.EXAMPLE", "proxy.example"),
        ("my_proxy.internal", "my_proxy.internal"),
        ("my_proxy.straße.de", "my_proxy.xn--strae-oqa.de"),  # '_' only in ASCII labels
        ("a" * 63 + ".example", "a" * 63 + ".example"),
        (".".join(["b" * 50] * 4 + ["b" * 49]), ".".join(["b" * 50] * 4 + ["b" * 49])),  # 253
        ("192.0.2.1", "192.0.2.1"),
    ],
)
def test_host_names_are_normalised(written: str, host: str) -> None:
    """Proxy hosts become lower-case ASCII; international names use IDNA 2008 with UTS 46."""
    route = load_config(proxy=f"socks5://{written}:1080").proxy
    assert route is not None
    assert route[0].host == host


@pytest.mark.parametrize(
    ("host", "message"),
    [
        (
            "a..b",
            "'a..b' is not a valid host name: it has an empty label (a dot at the start or the "
            "end, or two dots in a row)",
        ),
        (
            ".example",
            "'.example' is not a valid host name: it has an empty label (a dot at the start or "
            "the end, or two dots in a row)",
        ),
        (
            "example.",
            "'example.' is not a valid host name: it has an empty label (a dot at the start or "
            "the end, or two dots in a row)",
        ),
        (
            "a" * 64 + ".example",
            "the host name has a label of 64 characters (aaaaaaaaaaaa…); DNS allows 63 per label",
        ),
        (".".join(["b" * 50] * 5), "the host name is 254 characters long; DNS allows 253"),
        (
            "ä" * 64 + ".de",
            f"'{'ä' * 64}.de' is not a valid host name: Label too long (IDNA 2008)",
        ),
        ("ä" * 1013, "the host name is 1013 characters long; DNS allows 253"),
        (
            "ä." * 505 + "ää",  # 1,012 characters: encoded, then measured
            "the host name is 4048 characters long in its ASCII (IDNA) form; DNS allows 253",
        ),
        (
            "☃.example",
            "'☃.example' is not a valid host name: Codepoint U+2603 at position 1 of '☃' not "
            "allowed (IDNA 2008)",
        ),
        (
            "proxy-.example",
            "'proxy-.example' is not a valid host name: the label 'proxy-' starts or ends with '-'",
        ),
        (
            "-proxy.example",
            "'-proxy.example' is not a valid host name: the label '-proxy' starts or ends with '-'",
        ),
        (
            "pro*xy.example",
            "'pro*xy.example' is not a valid host name: '*' is not allowed (letters, digits, '-', "
            "'_' and '.' only)",
        ),
        (
            "xn--zz.example",
            "'xn--zz.example' is not a valid host name: the label 'xn--zz' is not a valid IDNA "
            "(punycode) label",
        ),
        (
            "1.2.3.256",
            "'1.2.3.256' is not a valid IPv4 address (four numbers from 0 to 255, without leading "
            "zeros)",
        ),
        (
            "010.0.0.1",
            "'010.0.0.1' is not a valid IPv4 address (four numbers from 0 to 255, without leading "
            "zeros)",
        ),
    ],
)
def test_bad_host_names_say_what_is_wrong(host: str, message: str) -> None:
    """Empty labels, long labels and names, IDNA violations and bad IPv4 addresses are refused,
    each with its reason in these words."""
    with pytest.raises(ConfigError) as caught:
        load_config(proxy=f"socks5://{host}:1080")
    [problem] = caught.value.problems
    assert (problem.where, problem.path, problem.message) == (
        "keyword argument proxy=",
        "proxy",
        message,
    )


def test_canonical_hop_mappings_validate_the_host_too() -> None:
    """A hop given in its canonical fields (scheme, host, …) gets the same host checks."""
    from botsession import ProxyHop

    fields = {"scheme": "socks5", "port": 1, "rdns": True}
    assert ProxyHop.model_validate({**fields, "host": "Straße.de"}).host == "xn--strae-oqa.de"
    with pytest.raises(ValueError, match="it has an empty label"):
        ProxyHop.model_validate({**fields, "host": "a..b"})
    with pytest.raises(ValueError, match="valid integer"):
        ProxyHop.model_validate({**fields, "host": "h", "port": True})


# --- api.base --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("https://api.telegram.org/", "https://api.telegram.org"),
        ("HTTPS://API.Telegram.ORG", "https://api.telegram.org"),
        ("http://Straße.de:8081", "http://xn--strae-oqa.de:8081"),
        ("http://127.0.0.1:8081/tg/", "http://127.0.0.1:8081/tg"),
        ("http://127.0.0.1:8081/Relay/TGX//", "http://127.0.0.1:8081/Relay/TGX"),
        ("http://[0:0::1]:8081", "http://[::1]:8081"),
        ("http://127.0.0.1:65535", "http://127.0.0.1:65535"),
        ("  https://api.telegram.org  ", "https://api.telegram.org"),
    ],
)
def test_api_base_is_stored_as_a_normalised_url(written: str, stored: str) -> None:
    """Scheme and host are lower-cased, the host IDNA-encoded, a path prefix kept as written
    but for its trailing slashes."""
    assert load_config(api={"base": written}).api.base == stored


def test_api_base_path_prefix_reaches_aiogram() -> None:
    """A local Bot API server behind a path prefix gets URLs under that prefix."""
    from botsession import build_session_from_config

    session = build_session_from_config(api={"base": "http://127.0.0.1:8081/tg/", "is_local": True})
    assert session.api.api_url("T", "getMe") == "http://127.0.0.1:8081/tg/botT/getMe"
    assert session.api.file_url("T", "a.txt") == "http://127.0.0.1:8081/tg/file/botT/a.txt"


@pytest.mark.parametrize(
    ("base", "message"),
    [
        (
            "ftp://x.example",
            "expected an http:// or https:// base URL, such as https://api.telegram.org",
        ),
        (
            "api.telegram.org",
            "expected an http:// or https:// base URL, such as https://api.telegram.org",
        ),
        (
            "https://bot:secret@api.example",
            "expected an http:// or https:// base URL without credentials (no user name or "
            "password)",
        ),
        ("https://api.example/?a=1", "the base URL cannot have a query or fragment"),
        ("https://api.example/#x", "the base URL cannot have a query or fragment"),
        ("https://api.example:0", "the port must be a number from 1 to 65535, found 0"),
        ("https://api.example:65536", "the port must be a number from 1 to 65535, found 65536"),
        ("https://api.example:https", "the port must be a number from 1 to 65535"),
        ("https://api.example:", "the port must be a number from 1 to 65535"),
        (
            "https://",
            "the base URL has no host; expected an http:// or https:// base URL, such as "
            "https://api.telegram.org",
        ),
        (
            "https://:80",
            "the base URL has no host; expected an http:// or https:// base URL, such as "
            "https://api.telegram.org",
        ),
        (
            "https://a..b",
            "'a..b' is not a valid host name: it has an empty label (a dot at the start or the "
            "end, or two dots in a row)",
        ),
        (
            "https://api.example/a b",
            "the base URL contains a space, tab, line break or other control character",
        ),
        (
            "https://api.example/\x00",
            "the base URL contains a space, tab, line break or other control character",
        ),
        ("https://[::1", "the IPv6 address in the base URL has no closing ']'"),
        (
            "https://[::1]x",
            "expected an http:// or https:// base URL; a ':' and the port must follow the IPv6 "
            "address",
        ),
        ("https://::1:80", "an IPv6 address must be in brackets, as in http://[::1]:8081"),
        ("https://[nope]:80", "'nope' is not an IPv6 address"),
        (
            "https://[::1]]:80",
            "expected an http:// or https:// base URL; a ':' and the port must follow the IPv6 "
            "address",
        ),
    ],
)
def test_bad_api_base_says_what_is_wrong(base: str, message: str) -> None:
    """Each malformed base URL gets its own reason, in these words, at api.base."""
    with pytest.raises(ConfigError) as caught:
        load_config(api={"base": base})
    [problem] = caught.value.problems
    assert (problem.where, problem.path, problem.message) == (
        "keyword argument api=",
        "api.base",
        message,
    )
    assert "secret" not in str(caught.value)


# --- numbers and booleans --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("limit: 10\ntimeout: 2.5\nconnect_timeout: 1\n", (10, 2.5, 1.0)),
        ("limit: +7\ntimeout: 1.5e+1\nconnect_timeout: .5\n", (7, 15.0, 0.5)),
        ("timeout: 010.5\nconnect_timeout: 1.\n", (100, 10.5, 1.0)),
        ("limit: '010'\ntimeout: '1_000'\n", (10, 1000.0, 10.0)),  # quoted: text, as from env
    ],
)
def test_plain_decimal_numbers_are_read(text: str, expected: tuple[int, float, float]) -> None:
    """Plain decimal integers and floats (and quoted text) are numbers as written."""
    write("bot.yaml", text)
    config = load_config()
    assert (config.limit, config.timeout, config.connect_timeout) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yes", "expected a valid integer, unable to parse string as an integer, found 'yes'"),
        ("on", "expected a valid integer, unable to parse string as an integer, found 'on'"),
        ("true", "expected a valid integer, found True"),
        (
            "010",
            "a number written with a leading zero (YAML 1.1 reads 010 as the octal number 8, YAML "
            "1.2 as 10); write a plain decimal number such as 10 or 2.5, or quote the value if it "
            "is text",
        ),
        (
            "-00",
            "a number written with a leading zero (YAML 1.1 reads 010 as the octal number 8, YAML "
            "1.2 as 10); write a plain decimal number such as 10 or 2.5, or quote the value if it "
            "is text",
        ),
        (
            "0b101",
            "a number written in binary (0b…); write a plain decimal number such as 10 or 2.5, or "
            "quote the value if it is text",
        ),
        (
            "0x1F",
            "a number written in hexadecimal (0x…); write a plain decimal number such as 10 or "
            "2.5, or quote the value if it is text",
        ),
        ("0o17", "expected a valid integer, unable to parse string as an integer, found '0o17'"),
        (
            "!!int 0o17",
            "a number written in octal (0o…); write a plain decimal number such as 10 or 2.5, or "
            "quote the value if it is text",
        ),
        (
            "1:30",
            "a number written in base 60 (YAML 1.1 reads 1:30 as 90, YAML 1.2 as text); write a "
            "plain decimal number such as 10 or 2.5, or quote the value if it is text",
        ),
        (
            "1_000",
            "a number written with '_' between digits (YAML 1.2 reads it as text); write a plain "
            "decimal number such as 10 or 2.5, or quote the value if it is text",
        ),
        (
            "!!int 12abc",
            "a number written in a form that is not a number; write a plain decimal number such "
            "as 10 or 2.5, or quote the value if it is text",
        ),
        (
            "!!int +-0",
            "a number written in a form that is not a number; write a plain decimal number such "
            "as 10 or 2.5, or quote the value if it is text",
        ),
        (
            "!!int X010",
            "a number written in a form that is not a number; write a plain decimal number such "
            "as 10 or 2.5, or quote the value if it is text",
        ),
        (".inf", "expected a finite number, found inf"),
    ],
)
def test_yaml_1_1_numbers_and_booleans_are_not_integers(value: str, message: str) -> None:
    """limit: yes is not 1 and limit: 010 is not 8: YAML 1.1-only forms are errors, located,
    each saying in these words how to write the number."""
    write("bot.yaml", f"limit: {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert problems(caught) == [f"bot.yaml:1:8: limit: {message}"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timeout: 1:30.5\n", "bot.yaml:1:10: timeout: a number written in base 60"),
        ("timeout: 1_0.5\n", "bot.yaml:1:10: timeout: a number written with '_' between digits"),
        ("timeout: .inf\n", "bot.yaml:1:10: timeout: expected a finite number, found inf"),
        ("timeout: .nan\n", "bot.yaml:1:10: timeout: expected greater than 0, found nan"),
        ("timeout: !!float fast\n", "bot.yaml:1:10: timeout: a number written in a form that"),
        ("timeout: false\n", "bot.yaml:1:10: timeout: expected a valid number, found False"),
        (
            "proxy: socks5://127.0.0.1:1\nfallback: [socks5://127.0.0.1:2]\n"
            "fallback_retry_primary_after: yes\n",
            "bot.yaml:3:31: fallback_retry_primary_after: expected a valid number, unable to "
            "parse string as a number, found 'yes'",
        ),
        ("api:\n  is_local: 010\n", "bot.yaml:2:13: api.is_local: a number written with a leading"),
        ("profiles:\n  0b1: {}\n", "bot.yaml:2:3: profiles: mapping keys must be plain strings"),
    ],
)
def test_yaml_number_forms_are_refused_in_every_setting(text: str, message: str) -> None:
    """Floats, optional numbers, booleans and keys get the same rules as limit."""
    write("bot.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert any(message in line for line in problems(caught)), problems(caught)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("limit", True), ("timeout", False), ("connect_timeout", True)],
)
def test_booleans_are_never_numbers_from_python(setting: str, value: bool) -> None:
    """Keyword arguments and direct construction refuse True/False for number settings."""
    kind = "integer" if setting == "limit" else "number"
    with pytest.raises(ConfigError, match=rf"{setting}: expected a valid {kind}, found {value}"):
        load_config(**{setting: value})
    with pytest.raises(ValueError, match=f"valid {kind}"):
        BotSessionConfig(**{setting: value})


def test_booleans_are_never_numbers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOT_LIMIT=true and BOT_TIMEOUT=yes are errors, not 1."""
    monkeypatch.setenv("BOT_LIMIT", "true")
    monkeypatch.setenv("BOT_TIMEOUT", "yes")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert problems(caught) == [
        "environment variable BOT_TIMEOUT: timeout: expected a valid number, unable to parse "
        "string as a number, found 'yes'",
        "environment variable BOT_LIMIT: limit: expected a valid integer, unable to parse "
        "string as an integer, found 'true'",
    ]


@pytest.mark.parametrize(
    ("written", "verify"),
    [("true", True), ("False", False), ("yes", True), ("off", False), ("'on'", True), ("1", True)],
)
def test_bool_settings_take_true_false_and_the_words_of_environment_variables(
    written: str, verify: bool
) -> None:
    """true/false are YAML booleans; yes/no/on/off are text, which a bool setting accepts."""
    write("bot.yaml", f"ssl:\n  verify: {written}\n")
    assert load_config().ssl.verify is verify


def test_yes_and_no_are_text_where_text_is_expected(monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile named no and a password yes are the words, as in YAML 1.2."""
    write(
        "bot.yaml",
        "default_profile: no\nprofiles:\n  no:\n    proxy:\n"
        "      url: http://bot@127.0.0.1:1\n      password: yes\n",
    )
    Path("bot.yaml").chmod(0o600)
    loaded = load_config_with_origins()
    assert loaded.stack.profile == "no"
    assert loaded.config.proxy is not None
    assert loaded.config.proxy[0].secret() == "yes"


# --- environment variables -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "yaml_text"),
    [
        ("BOT_PROXY__PASSWORD", "proxy: http://bot@127.0.0.1:1\n"),
        ("BOT_PROXY__0__PASSWORD", "proxy: [http://bot@127.0.0.1:1]\n"),
        (
            "BOT_FALLBACK__0__PASSWORD",
            "proxy: socks5://127.0.0.1:1\nfallback: [http://bot@127.0.0.1:2]\n",
        ),
    ],
)
@pytest.mark.parametrize("password", ["[not-json", "{x}", "null", '["a", "b"]', " {pw} "])
def test_password_variables_are_always_text(
    monkeypatch: pytest.MonkeyPatch, name: str, yaml_text: str, password: str
) -> None:
    """A …PASSWORD variable that looks like JSON (or null) is the password as written."""
    write("bot.yaml", yaml_text)
    monkeypatch.setenv(name, password)
    config = load_config()
    route = config.fallback[0] if config.fallback else config.proxy
    assert route is not None
    assert route[-1].secret() == password


def test_json_duplicate_keys_name_key_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A repeated key in a JSON value is an error naming the key and the variable."""
    hop = '{"url": "http://bot@127.0.0.1:1", "password": "first-pw", "password": "second-pw"}'
    monkeypatch.setenv("BOT_FALLBACK", f"[{hop}]")
    with pytest.raises(ConfigError) as caught:
        load_config(proxy="socks5://127.0.0.1:1")
    assert problems(caught) == [
        "environment variable BOT_FALLBACK: not valid JSON for botsession: "
        "the key 'password' appears twice"
    ]
    assert "first-pw" not in str(caught.value)
    assert "second-pw" not in str(caught.value)


def test_unicode_digits_in_names_are_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOT_PROXY__²__PASSWORD is refused as a ConfigError (str.isdigit accepts '²')."""
    write("bot.yaml", "proxy: [socks5://127.0.0.1:1]\n")
    fullwidth_zero = "\uff10"
    for name in (
        "BOT_PROXY__²__PASSWORD",
        "BOT_PROXY__٣__PASSWORD",
        f"BOT_FALLBACK__{fullwidth_zero}__URL",
    ):
        monkeypatch.setenv(name, "x")
        with pytest.raises(ConfigError) as caught:
            load_config()
        assert problems(caught) == [
            f"environment variable {name}: hop and item numbers are written with the digits 0 to 9"
        ]
        monkeypatch.delenv(name)


def test_huge_hop_numbers_are_unknown_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hop number of thousands of digits is an unknown key, not Python's int-size ValueError."""
    write("bot.yaml", "proxy: [http://bot@127.0.0.1:1]\n")
    monkeypatch.setenv(f"BOT_PROXY__{'9' * 5000}__PASSWORD", "x")
    with pytest.raises(ConfigError):
        load_config()


def test_names_that_differ_only_in_case_are_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOT_PROXY and bot_proxy both set (or BOT_PROFILE twice) is an error naming both."""
    monkeypatch.setenv("BOT_PROXY", "socks5://127.0.0.1:1")
    monkeypatch.setenv("bot_proxy", "socks5://127.0.0.1:2")
    monkeypatch.setenv("Bot_Profile", "a")
    monkeypatch.setenv("BOT_PROFILE", "a")
    monkeypatch.setenv("BOT_TOKEN", "1")  # the bot's own variables are not looked at
    monkeypatch.setenv("bot_token", "2")
    with pytest.raises(ConfigError) as caught:
        load_config()
    clashes = [line for line in problems(caught) if "differ only in case" in line]
    assert clashes == [
        "environment variables BOT_PROXY and bot_proxy: these names differ only in case; "
        "botsession reads names without regard to case, so set only one of them",
        "environment variables BOT_PROFILE and Bot_Profile: these names differ only in case; "
        "botsession reads names without regard to case, so set only one of them",
    ]


def test_dotenv_names_that_differ_only_in_case_are_an_error() -> None:
    """The same holds inside a .env file; the environment may still override it by any case."""
    write(".env", "BOT_LIMIT=3\nbot_limit=4\n")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert problems(caught) == [
        ".env (BOT_LIMIT and bot_limit): these names differ only in case; botsession reads "
        "names without regard to case, so set only one of them"
    ]


def test_dotenv_values_are_not_interpolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """${X} in a .env value stays literal (python-dotenv would expand it)."""
    monkeypatch.setenv("X", "expanded")
    write(".env", "BOT_PROXY__PASSWORD=pa${X}ss\nLEFT=${X}\n")
    write("bot.yaml", "proxy: http://bot@127.0.0.1:1\napi:\n  base: http://h/${LEFT}\n")
    config = load_config()
    assert config.proxy is not None
    assert config.proxy[0].secret() == "pa${X}ss"
    assert config.api.base == "http://h/${X}"


# --- YAML merge keys -------------------------------------------------------------------------


MERGES = """\
proxy:
  - &hop
    url: socks5://bot@127.0.0.1:1080
    password: hop-pass
    rdns: false
fallback:
  - <<: *hop
    url: socks5://bot@127.0.0.2:1080
  - <<: [{url: 'socks5://bot@127.0.0.3:1'}, *hop]
    rdns: true
"""


def test_merge_keys_can_be_overridden_beside_them() -> None:
    """A key written beside '<<' wins; of several merged mappings the first wins."""
    write("bot.yaml", MERGES)
    Path("bot.yaml").chmod(0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BotSessionWarning)  # rdns: false and an API name
        config = load_config()
    first, second = config.fallback
    assert (first[0].host, first[0].secret(), first[0].rdns) == ("127.0.0.2", "hop-pass", False)
    assert (second[0].host, second[0].secret(), second[0].rdns) == ("127.0.0.3", "hop-pass", True)


def test_merged_and_overriding_values_keep_their_positions() -> None:
    """Errors point at the value that is in effect: the merged one, or the one beside '<<'."""
    write("bot.yaml", MERGES.replace("hop-pass", "[no]").replace("127.0.0.2:1080", "127.0.0.2"))
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert problems(caught) == [
        "bot.yaml:4:15: proxy[0].password: expected a valid string, found ***",
        "bot.yaml:4:15: fallback[0].password: expected a valid string, found ***",
        "bot.yaml:4:15: fallback[1].password: expected a valid string, found ***",
        "bot.yaml:8:10: fallback[0].url: the port is missing; expected "
        "scheme://[user[:password]@]host:port",
    ]


MERGE_TAKES = (
    "the merge key '<<' takes a mapping or a list of mappings (an alias such as *defaults, "
    "or [*a, *b])"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("api:\n  <<: 1\n", [f"bot.yaml:2:7: api: {MERGE_TAKES}"]),
        ("api:\n  <<: [{base: 'http://a'}, 2]\n", [f"bot.yaml:2:7: api: {MERGE_TAKES}"]),
        (
            "api: &api\n  base: http://h\n  <<: [*api, {is_local: maybe}]\n",
            [
                "bot.yaml:3:7: api: the merge key '<<' refers to a mapping that contains it",
                "bot.yaml:3:25: api.is_local: expected a valid boolean, unable to interpret "
                "input, found 'maybe'",
            ],
        ),
        (
            "api:\n  <<: {base: 'http://a', base: 'http://b'}\n",
            ["bot.yaml:2:26: api.base: duplicate key 'base'; it is also set at bot.yaml:2:8"],
        ),
        (
            "api:\n  <<: {base: 'http://a'}\n  <<: {is_local: maybe}\n",
            ["bot.yaml:3:3: api: duplicate key '<<'; it is also set at bot.yaml:2:3"],
        ),
    ],
    ids=["not-a-mapping", "list-with-a-number", "refers-to-itself", "duplicate-inside", "twice"],
)
def test_bad_merge_keys_are_located(text: str, expected: list[str]) -> None:
    """A '<<' that merges no mapping, or the mapping holding it, is a problem at its value (the
    other mappings of its list are still merged); a duplicate inside a merged mapping is one
    at the key, under the path of the mapping it is merged into; a second '<<' is one at its
    key, and only the first is merged."""
    write("bot.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert problems(caught) == expected


def nested_merges(levels: int) -> str:
    """``api: {<<: {<<: … {base: 'http://h'}}}`` with ``levels`` merge keys, one inside another."""
    return "api: " + "{<<: " * levels + "{base: 'http://h'}" + "}" * levels + "\n"


@pytest.mark.parametrize(
    ("text", "problem", "data"),
    [
        ("1: one\nb: 2\n", "bot.yaml:1:1: mapping keys must be plain strings", {"b": 2}),
        (
            "b: 2\nb: 3\nc: 4\n",
            "bot.yaml:2:1: b: duplicate key 'b'; it is also set at bot.yaml:1:1",
            {"b": 2, "c": 4},
        ),
    ],
    ids=["number-key", "duplicate-key"],
)
def test_keys_after_a_bad_key_are_still_read(text: str, problem: str, data: dict[str, int]) -> None:
    """A key that is not text, or a second one, is a problem and left out; the keys after it
    are read (of two duplicates the first is kept)."""
    write("bot.yaml", text)
    layer = read_yaml(Path("bot.yaml"), "bot.yaml", {})
    assert ([str(found) for found in layer.problems], layer.data) == ([problem], data)


def test_a_plain_equals_sign_key_is_text() -> None:
    """PyYAML tags a plain '=' key as a "value" key; it is read as the text '='."""
    write("bot.yaml", "=: 1\nb: {=: 2}\n")
    layer = read_yaml(Path("bot.yaml"), "bot.yaml", {})
    assert (layer.data, layer.problems) == ({"=": 1, "b": {"=": 2}}, [])


def test_merge_keys_nest_up_to_32_levels() -> None:
    """32 merge keys one inside another are read; a 33rd is refused, at the file."""
    write("bot.yaml", nested_merges(32))
    assert load_config().api.base == "http://h"
    write("bot.yaml", nested_merges(33))
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert problems(caught) == ["bot.yaml: merge keys ('<<') are nested more than 32 levels deep"]


def test_merge_key_bombs_are_bounded() -> None:
    """Merge keys that multiply (<<: [*a, *a, …] nested) stop at the value limit, after the work
    of that many values."""
    lines = ["a0: &a0 {" + ", ".join(f"k{i}: {i}" for i in range(50)) + "}"]
    lines += [f"a{n}: &a{n} {{<<: [{', '.join([f'*a{n - 1}'] * 50)}]}}" for n in range(1, 8)]
    write("bot.yaml", "\n".join(lines) + "\n")
    # 50^7 values when merged; refused after the work of 10,000 (about 3 calls each).
    with (
        bounded_work(100 * 10_000),
        pytest.raises(ConfigError, match="expands to more than 10000 values"),
    ):
        load_config()


# --- names resolved on this machine ----------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (["socks5://127.0.0.1:1"], []),
        (["socks5://proxy.example:1"], [("proxy.example", 1, "dials hop 1")]),
        (["socks4://127.0.0.1:1"], [("api.telegram.org", None, "hop 1 is socks4")]),
        (["socks4a://127.0.0.1:1"], []),
        (
            [{"url": "socks5://127.0.0.1:1", "rdns": False}, "http://relay.example:3128"],
            [("relay.example", 2, "hop 1 is socks5 with rdns: false")],
        ),
        (
            ["socks4://127.0.0.1:1", "http://[::1]:3128", "socks4://10.0.0.1:1"],
            [("api.telegram.org", None, "hop 3 is socks4")],
        ),
        (
            ["http://a.example:1", "socks4://b.example:1", "socks5h://c.example:1"],
            [
                ("a.example", 1, "dials hop 1"),
                ("c.example", 3, "hop 2 is socks4"),
            ],
        ),
    ],
)
def test_names_resolved_locally(route: list[Any], expected: list[tuple[Any, ...]]) -> None:
    """Hop 1's name, the name after each hop that resolves nothing, and the API host last."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BotSessionWarning)
        config = load_config(proxy=route)
    lookups = config.resolved_locally(config.proxy)
    assert [(item.name, item.hop, item.reason) for item in lookups] == expected


def test_direct_connection_resolves_the_api_host() -> None:
    """Without a proxy this machine resolves the Bot API host (unless it is an address)."""
    assert names_resolved_locally(None, "api.telegram.org") == (
        LocalLookup("api.telegram.org", None, "direct connection"),
    )
    assert names_resolved_locally(None, "::1") == ()
    assert load_config(api={"base": "http://127.0.0.1:8081"}).resolved_locally(None) == ()


def test_a_name_after_a_locally_resolving_hop_warns_once_per_load() -> None:
    """socks4 → a named hop warns at load, once, naming the route, the hop and the fix."""
    route = ["socks4://192.0.2.10:1080", "socks4a://exit.example.org:1080"]
    fallback = [[{"url": "socks5://10.0.0.1:1", "rdns": False}, "http://relay.example:3128"]]
    with pytest.warns(BotSessionWarning) as caught:
        load_config(proxy=route, fallback=fallback)
    assert [str(warning.message) for warning in caught] == [
        "proxy: hop 1 (socks4://192.0.2.10:1080) is socks4, so this machine resolves the name "
        "of hop 2 (exit.example.org) itself, in the clear; use socks4a:// or socks5 with remote "
        "DNS (rdns) for hop 1, or give hop 2 as an IP address; "
        "fallback[0]: hop 1 (socks5://10.0.0.1:1) is socks5 with rdns: false, so this machine "
        "resolves the name of hop 2 (relay.example) itself, in the clear; use socks4a:// or "
        "socks5 with remote DNS (rdns) for hop 1, or give hop 2 as an IP address"
    ]


@pytest.mark.parametrize(
    "route",
    [
        ["socks4://192.0.2.10:1080", "socks4a://198.51.100.7:1080"],
        ["socks4a://192.0.2.10:1080", "socks4a://exit.example.org:1080"],
        ["socks5://proxy.example:1", "http://relay.example:3128"],
        ["socks4://192.0.2.10:1080"],  # the Bot API host: socks4 is chosen for that on purpose
    ],
)
def test_no_warning_when_no_hop_name_is_resolved_here(route: list[str]) -> None:
    """IP addresses after socks4, proxies that resolve names, and a last socks4 hop are fine."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_config(proxy=route)


def test_show_json_lists_the_names_resolved_here(capsys: pytest.CaptureFixture[str]) -> None:
    """show --json has resolved_locally per route, with hop numbers and reasons."""
    from botsession.cli import main

    write(
        "bot.yaml",
        "proxy: [socks5://proxy.example:1080]\nfallback:\n  - socks4://10.0.0.1:1\n"
        "api:\n  base: https://Straße.de\n",
    )
    assert main(["show", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["resolved_locally"] == [
        {
            "route": "proxy",
            "names": [{"name": "proxy.example", "hop": 1, "reason": "dials hop 1"}],
        },
        {
            "route": "fallback[0]",
            "names": [{"name": "xn--strae-oqa.de", "hop": None, "reason": "hop 1 is socks4"}],
        },
    ]
    assert main(["show"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[3] == (
        "resolved on this machine: proxy: proxy.example (dials hop 1); "
        "fallback[0]: xn--strae-oqa.de (hop 1 is socks4)"
    )
    assert main(["check"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == shown[3]
