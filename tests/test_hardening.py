"""Hostile and broken input: only ConfigError ever escapes, quickly, and nothing leaks."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import string
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botsession import BotSessionWarning, ConfigError, build_session_from_config, load_config
from botsession.cli import main as cli_main
from botsession.redaction import redact_url

from .support import SENTINEL, bounded_work

CORPUS = Path(__file__).resolve().parent / "bad_configs"
CASES = sorted(p for p in CORPUS.iterdir() if p.suffix == ".yaml")
# 150 examples per property in the suite; HYPOTHESIS_PROFILE=thorough runs 5,000.
settings.register_profile(
    "suite",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("thorough", settings.get_profile("suite"), max_examples=5000)
HYPOTHESIS = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


@dataclass
class Case:
    """What a corpus file expects, from its ``# key: value`` header lines."""

    expect: str
    at: str
    env: list[tuple[str, str]] = field(default_factory=list)
    dotenv: list[str] = field(default_factory=list)
    fifos: list[str] = field(default_factory=list)
    sized_files: list[tuple[str, int]] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)


def expectations(case: Path) -> Case:
    sidecar = case.with_name(case.name + ".expect")
    header = (sidecar if sidecar.exists() else case).read_text(encoding="utf-8", errors="replace")
    fields: dict[str, list[str]] = {
        key: [] for key in ("expect", "at", "env", "dotenv", "fifo", "sized-file", "secret")
    }
    for line in header.splitlines():
        for key, values in fields.items():
            if line.startswith(f"# {key}: "):
                values.append(line[len(f"# {key}: ") :])
    sized = [(name, int(size)) for name, size in map(str.split, fields["sized-file"])]
    return Case(
        expect=fields["expect"][0],
        at=fields["at"][0],
        env=[tuple(item.split("=", 1)) for item in fields["env"]],  # type: ignore[misc]
        dotenv=fields["dotenv"],
        fifos=fields["fifo"],
        sized_files=sized,
        secrets=fields["secret"],
    )


POSITION = re.compile(r"bot\.yaml:\d+:\d+")
LOCATION_KINDS = {
    "file:line:col": POSITION.fullmatch,
    "the file as a whole": re.compile(r"bot\.yaml").fullmatch,
    "an environment variable": re.compile(r"environment variables? \S+( and \S+)?").fullmatch,
    "the .env file and variable": re.compile(r"\.env(:\d+)? \(.+\)").fullmatch,
}


def location_kind(at: str) -> str:
    """Which of the four kinds of location a corpus case is checked against."""
    kinds = [kind for kind, matches in LOCATION_KINDS.items() if matches(at)]
    assert len(kinds) == 1, at
    return kinds[0]


def test_the_corpus_is_large_enough() -> None:
    """The committed corpus holds at least 90 broken configs, each with an expectation."""
    assert len(CASES) >= 90
    for case in CASES:
        assert expectations(case).expect, case


def test_every_corpus_case_names_a_precise_location() -> None:
    """Each case is checked at a file:line:col, at the whole file (size, encoding, expansion
    and nesting limits), at an environment variable, or at a .env file and its variables."""
    kinds = [location_kind(expectations(case).at) for case in CASES]
    whole_file = [
        case.name for case in CASES if location_kind(expectations(case).at) == "the file as a whole"
    ]
    assert kinds.count("file:line:col") >= 70
    assert sorted(whole_file) == [
        "50-billion-laughs.yaml",
        "51-deep-nesting.yaml",
        "90-not-utf8.bin.yaml",
        "91-control-characters.bin.yaml",
    ]
    for case in CASES:
        expected = expectations(case)
        variables = bool(expected.env or expected.dotenv)
        assert variables == (
            location_kind(expected.at) in ("an environment variable", "the .env file and variable")
        ), case.name


def corpus_id(case: Path) -> str:
    return f"{case.name} @ {location_kind(expectations(case).at)}"


@pytest.mark.parametrize("case", CASES, ids=corpus_id)
def test_bad_config_corpus(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each broken config is refused with its expected message at exactly its expected location
    (and without any of its secrets in the error)."""
    expected = expectations(case)
    shutil.copyfile(case, tmp_path / "bot.yaml")
    for name, value in expected.env:
        monkeypatch.setenv(name, value)
    if expected.dotenv:
        (tmp_path / ".env").write_text("\n".join(expected.dotenv) + "\n", encoding="utf-8")
    for name in expected.fifos:
        os.mkfifo(tmp_path / name)
    for name, size in expected.sized_files:
        (tmp_path / name).write_bytes(b"x" * size)
    with pytest.raises(ConfigError) as caught:
        load_config()
    located = [p for p in caught.value.problems if expected.expect in str(p)]
    assert located, f"{expected.expect!r} not in {caught.value}"
    assert any(problem.where == expected.at for problem in located), [str(p) for p in located]
    for secret in expected.secrets:
        assert secret not in str(caught.value)


# --- property-based: only ConfigError escapes -----------------------------------------------

SCHEMES = st.sampled_from(
    ["http", "socks4", "socks4a", "socks5", "socks5h", "https", "SOCKS5", "", "ftp"]
)
URL_TEXT = st.text(alphabet=string.printable + "äß€😀@:/#?[]%\u3002\uff45²\x85\xa0", max_size=40)
URLS = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda scheme, user, password, host, port: f"{scheme}://{user}{password}{host}{port}",
        SCHEMES,
        st.one_of(st.just(""), URL_TEXT.map(lambda u: f"{u}@")),
        st.one_of(st.just(""), URL_TEXT.map(lambda p: f":{p}")),
        st.one_of(
            URL_TEXT,
            st.sampled_from(
                [
                    "127.0.0.1",
                    "[::1]",
                    "proxy.example",
                    "::1",
                    "straße.de",
                    "a..b",
                    "xn--zz",
                    "1.2.3",
                ]
            ),
        ),
        st.one_of(
            st.just(""),
            st.integers(-5, 70000).map(lambda n: f":{n}"),
            URL_TEXT.map(lambda p: f":{p}"),
        ),
    ),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30), URLS
)


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    )


VALUES = st.recursive(SCALARS, containers, max_leaves=25)
KEYS = st.sampled_from(
    [
        "proxy",
        "fallback",
        "timeout",
        "connect_timeout",
        "limit",
        "api",
        "ssl",
        "trust_env",
        "fallback_retry_primary_after",
        "profiles",
        "default_profile",
        "url",
        "password",
        "rdns",
    ]
)
DOCUMENTS = st.dictionaries(st.one_of(KEYS, st.text(max_size=10)), VALUES, max_size=6)


def only_config_errors(call: Any) -> None:
    """Run ``call``; it may succeed or raise ConfigError (or warn about a set), nothing else."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BotSessionWarning)
        try:
            call()
        except ConfigError as error:
            caught: ConfigError | None = error
        else:
            caught = None
    if caught is not None:
        assert str(caught).startswith("invalid botsession configuration (")
        assert caught.problems


@HYPOTHESIS
@given(url=URLS)
def test_any_proxy_url(url: str) -> None:
    """Any string as a proxy URL either validates or raises ConfigError."""
    only_config_errors(lambda: load_config(proxy=url))


@HYPOTHESIS
@given(value=VALUES)
def test_any_python_value_for_proxy_and_fallback(value: Any) -> None:
    """Any nesting of Python values as proxy or fallback validates or raises ConfigError."""
    only_config_errors(lambda: load_config(proxy=value))
    only_config_errors(
        lambda: build_session_from_config(proxy="socks5://127.0.0.1:1", fallback=value)
    )


@HYPOTHESIS
@given(document=DOCUMENTS)
def test_any_yaml_document(document: dict[str, Any], tmp_path: Path) -> None:
    """Any YAML mapping written to bot.yaml loads or raises ConfigError; so does the CLI."""
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    only_config_errors(lambda: load_config(path))
    assert run_cli("check", str(path)) in (0, 1)


@HYPOTHESIS
@given(text=st.text(max_size=300))
def test_any_text_as_yaml(text: str, tmp_path: Path) -> None:
    """Any text at all as bot.yaml loads or raises ConfigError."""
    path = tmp_path / "bot.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    only_config_errors(lambda: load_config(path))


YAML_SCALARS = st.sampled_from(
    [
        "010",
        "0b11",
        "0x1f",
        "0o17",
        "1:30",
        "1_000",
        "1:30.5",
        "yes",
        "No",
        "on",
        "OFF",
        "~",
        ".inf",
        "-.inf",
        ".NaN",
        "!!int abc",
        "!!float x",
        "!!bool maybe",
        "!!int 010",
        "*a",
        "[*a, *a]",
        "{<<: *a, url: 'socks5://h:1'}",
        "{<<: [*a, *a], rdns: no}",
        "{<<: 5}",
        "'socks5://u:p w@h:1'",
        '"socks5://u:p\\tw@h:1"',
        "socks4://192.0.2.1:1",
        "[socks4://192.0.2.1:1, socks5://proxy.example:1]",
        "http://Straße.de:1",
        "https://api.example:0",
        "${UNSET:-010}",
    ]
)


@HYPOTHESIS
@given(
    lines=st.lists(
        st.tuples(st.one_of(KEYS, st.sampled_from(["<<", "yes", "010", "x"])), YAML_SCALARS),
        max_size=6,
    )
)
def test_any_yaml_1_1_forms_merges_and_anchors(
    lines: list[tuple[str, str]], tmp_path: Path
) -> None:
    """YAML 1.1 numbers and booleans, merge keys and aliases load or raise ConfigError."""
    path = tmp_path / "bot.yaml"
    body = "".join(f"{key}: {value}\n" for key, value in lines)
    path.write_text("proxy: &a {url: 'socks5://127.0.0.1:1'}\n" + body, encoding="utf-8")
    only_config_errors(lambda: load_config(path))


ENV_TEXT = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=120
)
ENV_NAMES = st.sampled_from(
    [
        "BOT_PROXY",
        "BOT_FALLBACK",
        "BOT_LIMIT",
        "BOT_TIMEOUT",
        "BOT_API__BASE",
        "BOT_SSL__VERIFY",
        "BOT_PROXY__PASSWORD",
        "BOT_PROXY__0__URL",
        "BOT_PROFILE",
        "BOT_TRUST_ENV",
        "BOT_API",
        "BOT_SSL__",
        "bot_proxy",
        "Bot_Limit",
        "BOT_PROXY__²__PASSWORD",
        "BOT_FALLBACK__0__PASSWORD",
        "BOT_FALLBACK__1__URL",
        "BOT_TIMEOUT",
    ]
)
TRICKY_TEXT = st.sampled_from(
    [
        "/dev/zero",
        "/dev/urandom",
        "/",
        ".",
        "010",
        "yes",
        "0x10",
        "1_000",
        "true",
        '{"url": "socks5://h:1", "url": "socks5://h:2"}',
        "[" * 40 + "]" * 40,
        "null",
        "socks5://u:p w@h:1",
        "socks5://u:p\tw@h:1",
        "socks4://10.0.0.1:1",
        '["socks4://10.0.0.1:1", "http://relay.example:1"]',
        "https://Straße.de:8081/x/",
    ]
)
ENV_VALUES = st.one_of(ENV_TEXT, VALUES.map(json.dumps), TRICKY_TEXT, st.just(""), st.just("   "))


CONFIG_PATHS = st.sampled_from(["/dev/zero", "/dev/urandom", "/", ".", "/nonexistent/bot.yaml"])


@HYPOTHESIS
@given(
    environment=st.dictionaries(ENV_NAMES, ENV_VALUES, max_size=4),
    config=st.one_of(st.none(), CONFIG_PATHS),
)
def test_any_environment(
    environment: dict[str, str], config: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any values in BOT_* variables (BOT_CONFIG naming a device or a directory too) load or
    raise ConfigError; the CLI exits 0 or 1."""
    for name in [*ENV_NAMES.elements, "BOT_CONFIG"]:  # type: ignore[attr-defined]
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if config is not None:
        monkeypatch.setenv("BOT_CONFIG", config)
    only_config_errors(load_config)
    assert run_cli("show") in (0, 1)


def run_cli(*args: str) -> int:
    """The CLI in this process (quiet), returning its exit code; exceptions propagate."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli_main(list(args))


# --- bounded time and memory ---------------------------------------------------------------


WORK_PER_VALUE = 100
"""Function calls a config value may cost to read and validate (about 16 do)."""
VALUE_LIMIT = 10_000
"""Values a document may expand to (anchors and aliases, merge keys) before it is refused."""


def test_alias_bomb_is_refused_quickly_in_little_memory(tmp_path: Path) -> None:
    """A 'billion laughs' document (10^9 values when expanded) is refused after the work of
    10,000 values, in under 20 MB."""
    levels = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    (tmp_path / "bot.yaml").write_text("\n".join(levels) + "\n")
    tracemalloc.start()
    try:
        with (
            bounded_work(WORK_PER_VALUE * VALUE_LIMIT),
            pytest.raises(ConfigError, match=f"expands to more than {VALUE_LIMIT} values"),
        ):
            load_config()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024


def test_deeply_nested_input_is_refused_without_recursion_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nesting thousands of levels deep, in YAML or in JSON from the environment, is a ConfigError."""
    (tmp_path / "bot.yaml").write_text("proxy: " + "[" * 5000 + "]" * 5000 + "\n")
    # Some libyaml builds (PyYAML 6.0.4 wheels) stop at 1,000 levels themselves; else we stop at 32.
    with pytest.raises(
        ConfigError, match=r"nested more than 32 levels deep|exceeded maximum nesting depth"
    ):
        load_config()
    (tmp_path / "bot.yaml").unlink()
    nested = "[" * 20_000 + "]" * 20_000  # 40,000 bytes: within the 64 KiB cap on a value
    monkeypatch.setenv("BOT_PROXY", nested)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert [str(problem) for problem in caught.value.problems] == [
        "environment variable BOT_PROXY: values are nested more than 32 levels deep"
    ]


def test_huge_values_are_refused_quickly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A huge environment value is refused; a huge YAML value is reported in linear time."""
    monkeypatch.setenv("BOT_PROXY", "socks5://" + "a" * 100_000 + ":1")
    with pytest.raises(
        ConfigError,
        match="environment variable BOT_PROXY: the value is 100011 bytes; the limit is 65536",
    ):
        load_config()
    monkeypatch.delenv("BOT_PROXY")
    # "a://x:" repeated backtracks quadratically in a naive redaction regex (minutes on 1 MB).
    bot_yaml = tmp_path / "bot.yaml"

    def report(repeats: int) -> None:
        bot_yaml.write_text("timeout: '" + "a://x:" * repeats + "'\n")
        with pytest.raises(ConfigError, match="timeout: expected a valid number"):
            load_config()

    assert_linear(report, 2_500)


def cpu_seconds(call: Callable[[], object]) -> float:
    """The least CPU time of up to five runs of ``call`` (no more once they took a second):
    time a busy machine gives to other processes does not count, nor does a run they
    interrupted."""
    runs: list[float] = []
    while len(runs) < 5 and sum(runs) < 1:
        started = time.thread_time()
        call()
        runs.append(time.thread_time() - started)
    return min(runs)


GROWTH = 8
"""Four times the input may cost at most this many times as much (4 if linear, 16 if
quadratic): noise in the measurements stays well within it, even on a busy machine."""


def assert_linear(work: Callable[[int], object], size: int) -> None:
    """``work(4 * size)`` costs less than ``GROWTH`` times what ``work(size)`` costs."""
    small, large = cpu_seconds(lambda: work(size)), cpu_seconds(lambda: work(4 * size))
    assert large < GROWTH * small, f"{large:.5f} s for 4 x {size}, {small:.5f} s for {size}"


@pytest.mark.parametrize(("unit", "end"), [("a", ""), ("a://x:", ""), ("a://x/", "@"), ("@", "")])
def test_redaction_is_linear(unit: str, end: str) -> None:
    """Masking passwords in hostile text takes time linear in its length."""
    repeats = 25_000 // len(unit)  # 25 and 100 KB; a quadratic regex took 54 s on 200 KB
    assert_linear(lambda n: redact_url(unit * n + end), repeats)


# --- plaintext passwords in readable files ------------------------------------------------


def test_readable_file_with_plaintext_password_warns_once(tmp_path: Path) -> None:
    """A password written into a group/world-readable bot.yaml warns once, like OpenSSH does,
    at the line that loaded the file (as every BotSessionWarning does)."""
    path = tmp_path / "bot.yaml"
    path.write_text(f"proxy: socks5://bot:{SENTINEL}@127.0.0.1:1080\n")
    path.chmod(0o644)
    with pytest.warns(BotSessionWarning) as caught:
        load_config(path)
    [warning] = caught
    assert warning.filename == __file__
    message = str(warning.message)
    assert message.startswith(
        f"{path} holds a plaintext password and is readable by group and others"
    )
    assert "chmod 600" in message
    assert "${VAR} or password_file" in message
    assert SENTINEL not in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_config(path)  # once per file


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("proxy: socks5://bot:pw@127.0.0.1:1080\n", 0o600),
        ("proxy:\n  url: socks5://bot@127.0.0.1:1080\n  password: ${PW:-x}\n", 0o644),
        ("proxy:\n  url: socks5://bot@127.0.0.1:1080\n  password_file: pw\n", 0o644),
        ("proxy: socks5://127.0.0.1:1080\n", 0o666),
    ],
)
def test_no_warning_when_the_password_is_private_or_elsewhere(
    tmp_path: Path, text: str, mode: int
) -> None:
    """Private files, ${VAR}, password_file and password-less files give no warning."""
    (tmp_path / "pw").write_text("x")
    path = tmp_path / "bot.yaml"
    path.write_text(text)
    path.chmod(mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_config(path)


def test_plaintext_password_in_a_profile_warns(tmp_path: Path) -> None:
    """A password inside a profile counts too."""
    path = tmp_path / "bot.yaml"
    path.write_text(
        "default_profile: a\nprofiles:\n  a:\n    proxy:\n      url: http://u@127.0.0.1:1\n      password: hunter22\n"
    )
    path.chmod(0o640)
    with pytest.warns(BotSessionWarning, match="readable by group;"):
        load_config(path)


def test_environment_is_untouched_by_the_tests() -> None:
    """(Guard) no BOT_ variable leaks out of the property tests above."""
    assert not [name for name in os.environ if name.upper().startswith("BOT_")]
