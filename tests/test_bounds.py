"""Every input bounded in time and memory: work grows linearly with the input, ``${VAR}``
expansion has a bound, and each hostile input is a ConfigError that names its place.

Work is measured as function calls (Python and builtin, counted with ``sys.setprofile``):
the count does not depend on the machine's speed or load. A linear loader makes 4 times the
calls for 4 times the input; the quadratic merges and scrubbing this replaced made 7 to 16
times as many (the more, the larger the input).
Only the regular expression case, where the work happens inside one call, compares CPU time.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botsession import ConfigError, load_config
from botsession.cli import main as cli_main
from botsession.errors import Problem
from botsession.factory import load_config_with_origins
from botsession.redaction import MASK, scrub, scrub_texts
from botsession.sources.problems import redacted_error
from botsession.sources.provenance import Origin, Origins
from botsession.sources.yaml_file import read_yaml

LINEAR = 5.0
"""Upper bound on cost(4n) / cost(n) in calls: a linear loader makes 4.0 times the calls (the
count is the same on any machine), a quadratic one 7 to 16 times."""


def calls_made(action: Callable[[], object]) -> int:
    """How many Python and builtin function calls ``action()`` makes."""
    count = 0

    def profile(frame: FrameType, event: str, arg: object) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        with contextlib.suppress(ConfigError):
            action()
    finally:
        sys.setprofile(previous)
    return count


def growth(prepare: Callable[[int], None], action: Callable[[], object], n: int) -> float:
    """cost(4n) / cost(n) in calls made, the input made by ``prepare(size)``."""
    prepare(n)
    with contextlib.suppress(ConfigError):
        action()  # first use: imports and caches are not the input's work
    costs = []
    for size in (n, 4 * n):
        prepare(size)
        costs.append(calls_made(action))
    return costs[1] / costs[0]


def cli_check(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``botsession check`` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    try:
        os.environ.update(env or {})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_main(["check", *args])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, out.getvalue(), err.getvalue()


def problems_of(**kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(**kwargs)
    return [str(problem) for problem in caught.value.problems]


def problems_and_peak_memory() -> tuple[list[str], int]:
    """The problems of ``load_config()`` and the peak of Python allocations while loading."""
    tracemalloc.start()
    try:
        found = problems_of()
        return found, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- linear work ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "BOT_PROXY__X{i}=1",  # unknown hop settings: one layer each, merged into one hop
        "BOT_TIMEOUT__X{i}=1",  # one mapping that grows with every variable
        'BOT_PROXY__X{i}={{"password": "secret-{i}"}}',  # as many passwords as problems
        "BOT_FALLBACK__{i}__URL=socks5://127.0.0.1:1",  # items of a list that is not there
    ],
)
def test_merging_dotenv_variables_is_linear(line: str) -> None:
    """Four times the variables in .env cost about four times the work, not sixteen."""

    def prepare(count: int) -> None:
        Path(".env").write_text("".join(line.format(i=i) + "\n" for i in range(count)))

    assert growth(prepare, load_config, 300) < LINEAR


def test_merging_environment_variables_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    """Four times the BOT_… variables in the environment cost about four times the work."""
    names: list[str] = []

    def prepare(count: int) -> None:
        for name in names:
            monkeypatch.delenv(name)
        names[:] = [f"BOT_PROXY__X{i}" for i in range(count)]
        for name in names:
            monkeypatch.setenv(name, '{"password": "secret"}')

    assert growth(prepare, load_config, 300) < LINEAR


@pytest.mark.parametrize(
    "entry",
    [
        "key{i}: 1\n",  # unknown top-level keys
        "  key{i}: {{password: secret-{i}}}\n",  # passwords under unknown hop keys
        "key{i}: 010\n",  # numbers YAML 1.1 reads otherwise
        "key: {i}\n",  # duplicate keys
    ],
)
def test_reading_many_yaml_keys_is_linear(entry: str) -> None:
    """Four times the keys in bot.yaml cost about four times the work."""
    head = "proxy:\n" if entry.startswith("  ") else ""

    def prepare(count: int) -> None:
        Path("bot.yaml").write_text(head + "".join(entry.format(i=i) for i in range(count)))

    assert growth(prepare, load_config, 300) < LINEAR


def test_a_route_replaced_from_above_keeps_no_origins_of_the_old_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """BOT_PROXY over a YAML chain takes the origins of every hop field with it."""
    Path("bot.yaml").write_text(
        "proxy:\n  - url: socks5://127.0.0.1:1\n    rdns: true\n"
        "  - url: http://bot@127.0.0.1:2\n    password_file: /nonexistent\n"
    )
    monkeypatch.setenv("BOT_PROXY", "socks5://127.0.0.1:9")
    origins = dict(load_config_with_origins().stack.origins)
    assert {path: origin.label for path, origin in origins.items() if path[0] == "proxy"} == {
        ("proxy",): "environment variable BOT_PROXY"
    }


PATHS = st.lists(st.sampled_from(["a", "b", 0, 1]), max_size=4).map(tuple)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["set", "delete", "drop"]), PATHS), max_size=40))
def test_the_origins_table_behaves_as_a_dict_of_paths(steps: list[tuple[str, Any]]) -> None:
    """Origins answers like a plain dict of paths after any sets, deletes and drops, and
    below(path) lists exactly the paths that start with path."""
    table, model = Origins(), {}
    for number, (step, path) in enumerate(steps):
        if step == "set":
            table[path] = model[path] = Origin("env", str(number))
        elif step == "delete" and path in model:
            del table[path], model[path]
        elif step == "drop":
            table.drop_below(path)
            model = {known: o for known, o in model.items() if known[: len(path)] != path}
        assert dict(table) == model
        assert repr(table) == f"Origins({model!r})"
        for prefix in {known[:end] for known in model for end in range(len(known) + 1)}:
            expected = {known: o for known, o in model.items() if known[: len(prefix)] == prefix}
            assert dict(table.below(prefix)) == expected
    if not model:
        assert table._children == {}  # what was unlinked leaves nothing in the index


def test_scrubbing_many_messages_of_many_secrets_is_linear() -> None:
    """Masking thousands of secrets in a hundred messages is linear in the secrets."""
    texts = [f"bot.yaml:{i}:3: proxy.key{i}: unknown setting 'key{i}'" for i in range(100)]

    def scrubbed(count: int) -> Callable[[], object]:
        secrets = [f"secret-{i}" for i in range(count)] + ["key7'"]
        return lambda: scrub_texts(texts, secrets)

    small, large = calls_made(scrubbed(1000)), calls_made(scrubbed(4000))
    assert large / small < LINEAR
    result = scrub_texts(texts, ["key7'", "secret-1"])
    assert result is not None
    assert result[7] == f"bot.yaml:7:3: proxy.key7: unknown setting '{MASK}"


def test_unclosed_references_are_read_in_linear_time() -> None:
    """'${' repeated without a closing brace is read in linear time (a regular expression
    scanning to the end from each '${' took minutes for a 1 MiB value)."""
    variables: dict[str, str] = {}

    def cpu_seconds(count: int) -> float:
        Path("bot.yaml").write_text('timeout: "' + "${" * count + '$${"\n')
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            layer = read_yaml(Path("bot.yaml"), "bot.yaml", variables)
            best = min(best, time.process_time() - started)
        assert layer.data == {"timeout": "${" * count + "${"}
        return best

    cpu_seconds(1000)  # warm up
    assert cpu_seconds(80_000) / cpu_seconds(20_000) < 10


# --- ${VAR} expansion is bounded -------------------------------------------------------------


def test_a_value_expanded_past_64_kib_is_a_located_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A value whose ${VAR} expand to more than 64 Ki characters is refused where it is used,
    before the text is built."""
    monkeypatch.setenv("BIG", "x" * 60_000)
    Path("bot.yaml").write_text('timeout: 5\napi:\n  base: "${BIG}${BIG}"\n')
    found, peak = problems_and_peak_memory()
    assert found == [
        "bot.yaml:3:9: api.base: with its ${…} expanded the value is more than 65536 "
        "characters long; that is the limit"
    ]
    assert peak < 4 * 1024 * 1024, peak


def test_expansions_through_many_aliases_stop_at_2_mi_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """${VAR} used through thousands of aliases stops at 2 Mi characters in all, located."""
    monkeypatch.setenv("PART", "x" * 30_000)
    aliases = ", ".join(["*p"] * 2000)  # 2,000 times 60,000 characters: 120 MB
    Path("bot.yaml").write_text(f'parts: &p "${{PART}}${{PART}}"\nmore: [{aliases}]\n')
    found, peak = problems_and_peak_memory()
    assert found == [
        "bot.yaml:1:8: more[33]: the keys and values of this file add up to more than 2097152 "
        "characters with aliases and ${…} expanded (a long value used through many aliases?)"
    ]
    assert peak < 16 * 1024 * 1024, peak


@pytest.mark.parametrize(
    ("anchored", "expected"),
    [
        ('"' + "socks5://u:p@" * 4000 + '"', "bot.yaml:1:4: b[39]: "),  # 52,000 characters
        ("\n  ? " + "k" * 52_000 + "\n  : 1", "bot.yaml:2:5: b[39]." + "k" * 61 + "...: "),
    ],
)
def test_long_values_and_keys_used_through_many_aliases_stop_at_2_mi_characters(
    anchored: str, expected: str
) -> None:
    """A value or key of 52,000 characters used through 9,990 aliases (520 MB to read, and
    to search for passwords, each time) stops at 2 Mi characters, located."""
    aliases = ", ".join(["*a"] * 9990)
    Path("bot.yaml").write_text(f"a: &a {anchored}\nb: [{aliases}]\n")
    assert problems_of() == [
        expected + "the keys and values of this file add up to more than 2097152 characters "
        "with aliases and ${…} expanded (a long value used through many aliases?)"
    ]


def test_expansions_within_the_bounds_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value of exactly 64 Ki characters after expansion is accepted as written."""
    monkeypatch.setenv("HALF", "x" * (32 * 1024 - 1))
    Path("bot.yaml").write_text('key: "${HALF}-${HALF}-"\n')
    layer = read_yaml(Path("bot.yaml"), "bot.yaml", dict(os.environ))
    assert layer.problems == []
    assert layer.data["key"] == ("x" * (32 * 1024 - 1) + "-") * 2


def read_problems(text: str) -> list[str]:
    """The problems of reading ``text`` as bot.yaml (the reader alone: any key will do)."""
    Path("bot.yaml").write_text(text)
    return [str(problem) for problem in read_yaml(Path("bot.yaml"), "bot.yaml", {}).problems]


def test_a_document_of_exactly_2_mi_characters_is_read() -> None:
    """Keys and values adding up to 2,097,152 characters with aliases are read; one more
    character is over the bound."""
    value = "v" * (2_097_150 // 50)  # a, b and 50 times the value: 2 Mi characters
    aliases = ", ".join(["*a"] * 49)
    assert read_problems(f"a: &a {value}\nb: [{aliases}]\n") == []
    assert read_problems(f"a: &a {value}\nbb: [{aliases}]\n") == [
        "bot.yaml:1:4: bb[48]: the keys and values of this file add up to more than 2097152 "
        "characters with aliases and ${…} expanded (a long value used through many aliases?)"
    ]


def test_a_document_of_exactly_10000_values_is_read() -> None:
    """The top mapping, a list and 9,998 items are 10,000 values, which are read; one more is
    over the bound, a problem of the whole file."""
    assert read_problems("a: [" + ", ".join(["1"] * 9998) + "]\n") == []
    assert read_problems("a: [" + ", ".join(["1"] * 9999) + "]\n") == [
        "bot.yaml: the document expands to more than 10000 values (anchors and aliases nested "
        "too deeply?)"
    ]


def test_values_nest_up_to_32_levels() -> None:
    """A value 32 levels down (a key and 31 lists) is read; one level more is refused."""
    assert read_problems("a: " + "[" * 32 + "]" * 32 + "\n") == []
    assert read_problems("a: " + "[" * 33 + "]" * 33 + "\n") == [
        "bot.yaml: values are nested more than 32 levels deep"
    ]


def test_each_missing_variable_is_reported_once_per_value() -> None:
    """A value repeating an unset ${VAR} thousands of times gets one problem per variable."""
    Path("bot.yaml").write_text('timeout: "' + "${NOPE}${!}" * 50_000 + '"\n')
    assert problems_of() == [
        "bot.yaml:1:10: timeout: ${NOPE} is not set and has no default (${NOPE:-…})",
        "bot.yaml:1:10: timeout: '${!}' is not a valid variable reference",
    ]


# --- hostile input: located ConfigErrors, in process and through the CLI ---------------------

DIGITS = "1" * 5000
"""More digits than Python converts to an int (4,300): a raw ValueError before."""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"limit: {DIGITS}\n",
            "bot.yaml:1:8: limit: a number of 5000 digits; numbers have at most 100 "
            "(quote the value if it is text)",
        ),
        (
            f"unknown: -{DIGITS}\n",
            "bot.yaml:1:10: unknown: a number of 5000 digits; numbers have at most 100 "
            "(quote the value if it is text)",
        ),
        (
            f"proxy:\n  - socks5://127.0.0.1:1\n  - url: socks5://127.0.0.1:2\n"
            f"    rdns: {DIGITS}\n",
            "bot.yaml:4:11: proxy[1].rdns: a number of 5000 digits; numbers have at most 100 "
            "(quote the value if it is text)",
        ),
        (f"? {DIGITS}\n: 1\n", "bot.yaml:1:3: mapping keys must be plain strings"),
    ],
)
def test_huge_yaml_integers_are_located_problems(text: str, expected: str) -> None:
    """An integer of 5,000 digits anywhere in bot.yaml is a located problem, also for check."""
    Path("bot.yaml").write_text(text)
    assert problems_of() == [expected]
    code, out, err = cli_check()
    assert (code, out) == (1, "")
    assert f"  - {expected}\n" in err
    assert "Traceback" not in err


def test_yaml_integers_of_up_to_100_digits_are_read() -> None:
    """An integer of 100 digits (its sign aside) is a number; one of 101 digits is a problem."""
    Path("bot.yaml").write_text(f"limit: +{'9' * 100}\n")
    assert load_config().limit == 10**100 - 1
    Path("bot.yaml").write_text(f"limit: -{'9' * 101}\n")
    assert problems_of() == [
        "bot.yaml:1:8: limit: a number of 101 digits; numbers have at most 100 "
        "(quote the value if it is text)"
    ]


def test_yaml_floats_of_many_digits_are_read() -> None:
    """Python reads floats of any length (the 4,300-digit limit is for int), so a float of
    5,000 digits is a number: too large for a timeout, not an error of the reader."""
    Path("bot.yaml").write_text(f"timeout: {DIGITS}.5\nconnect_timeout: 0.{DIGITS}\n")
    assert problems_of() == ["bot.yaml:1:10: timeout: expected a finite number, found inf"]


@pytest.mark.parametrize("where", ["environment", "dotenv"])
def test_huge_json_integers_in_variables_are_located_problems(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An integer of 5,000 digits in a variable's JSON is a problem naming the variable."""
    value = f'{{"url": "socks5://127.0.0.1:1", "rdns": {DIGITS}}}'
    if where == "environment":
        monkeypatch.setenv("BOT_PROXY", value)
        place = "environment variable BOT_PROXY"
    else:
        Path(".env").write_text(f"BOT_PROXY={value}\n")
        place = ".env:1 (BOT_PROXY)"
    expected = (
        f"{place}: not valid JSON for botsession: a number of 5000 digits; numbers have at most 100"
    )
    assert problems_of() == [expected]
    code, _, err = cli_check()
    assert code == 1
    assert f"  - {expected}\n" in err


def test_a_huge_integer_from_python_is_described_not_shown() -> None:
    """load_config(limit=-10**5000) is a ConfigError (repr() of it would raise ValueError)."""
    assert problems_of(limit=-(10**5000)) == [
        "keyword argument limit=: limit: expected greater than or equal to 1, found an "
        "integer of about 5000 digits"
    ]


def test_names_nested_too_deeply_are_located_problems() -> None:
    """A variable whose name nests 40 keys deep is refused, named (its name cut short)."""
    name = "BOT_PROXY" + "__X" * 40
    Path(".env").write_text(f"{name}=1\n")
    shown = name[:61] + "..."
    assert problems_of() == [f".env:1 ({shown}): the name nests keys more than 32 levels deep"]


def test_long_keys_and_names_are_cut_short_in_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key of 1 MB and a variable name of 100 KB appear cut to 64 characters, so the
    message stays short; a URL password in such a key is masked before it is cut."""
    Path("bot.yaml").write_text("? " + "k" * 1_000_000 + "\n: 1\n")
    long_name = "BOT_PROXY__" + "N" * 100_000
    monkeypatch.setenv(long_name, "1")
    with pytest.raises(ConfigError) as caught:
        load_config()
    key = "k" * 61 + "..."
    shown_name = long_name[:61] + "..."
    assert [str(p) for p in caught.value.problems] == [
        f"bot.yaml:1:3: {key}: unknown setting '{key}'; known keys: proxy, timeout, "
        "connect_timeout, limit, api, ssl, fallback, fallback_hedge_after, "
        "fallback_retry_primary_after, trust_env",
        f"environment variable {shown_name}: proxy.url: this setting is required here",
        f"environment variable {shown_name}: proxy.{'n' * 61}...: unknown setting "
        f"'{'n' * 61}...'; known keys: url, username, password, password_file, rdns, ca_file, "
        "verify",
    ]
    assert len(str(caught.value)) < 1000


def test_a_url_password_in_a_long_key_is_masked_before_the_key_is_cut() -> None:
    """A long key holding scheme://user:password@host shows *** where the password was."""
    key = "socks5://user:" + "p" * 100 + "@host:1"
    Path("bot.yaml").write_text(f"'{key}': 1\n")
    found = problems_of()
    assert found[0].startswith("bot.yaml:1:1: socks5://user:***@host:1: unknown setting")
    assert "ppp" not in " ".join(found)


def test_a_hop_made_of_variables_only_is_located_at_its_first_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a URL, a hop made of BOT_PROXY__… variables is reported at the first of them."""
    monkeypatch.setenv("BOT_PROXY__USERNAME", "bot")
    monkeypatch.setenv("BOT_PROXY__RDNS", "true")
    assert problems_of() == [
        "environment variable BOT_PROXY__RDNS: proxy.url: this setting is required here"
    ]


def test_a_config_error_lists_the_first_100_problems_and_counts_the_rest() -> None:
    """5,000 unknown keys give 100 problems and a line saying how many more there are."""
    Path("bot.yaml").write_text("".join(f"key{i}: 1\n" for i in range(5000)))
    found = problems_of()
    assert len(found) == 101
    assert found[0].startswith("bot.yaml:1:1: key0: unknown setting 'key0'")
    assert found[99].startswith("bot.yaml:100:1: key99: unknown setting 'key99'")
    assert found[100] == "4900 more problems: not shown (the first 100 are above)"
    code, _, err = cli_check()
    assert code == 1
    assert err.count("\n  - ") == 101


def test_passwords_resembling_the_messages_withhold_them() -> None:
    """Thousands of secrets that all occur in the messages' text make scrubbing give up
    (None: show nothing) instead of taking their product in time."""
    texts = [f"bot.yaml:{i}:1: key{i}: unknown setting 'key{i}'" for i in range(100)]
    joined = "".join(texts)
    secrets = {joined[i : i + size] for size in range(6, 30) for i in range(len(joined) - size)}
    assert len(secrets) > 30_000
    assert scrub_texts(texts, secrets) is None
    few = sorted(secrets)[:50]
    result = scrub_texts(texts, few)
    assert result == [scrub(text, few) for text in texts]
    problems = [Problem(text, "", "x") for text in texts]
    data = {"proxy": [{"password": secret} for secret in secrets]}
    assert [str(problem) for problem in redacted_error(problems, data).problems] == [
        "the configuration: 100 problems, not shown: the configuration holds thousands of "
        "passwords that resemble the text of the messages"
    ]


def test_many_names_that_differ_only_in_case_are_listed_in_part() -> None:
    """Seven spellings of one variable are one problem naming five of them and a count."""
    spellings = ["BOT_LIMIT", "bot_limit", "Bot_limit", "bOt_limit", "boT_limit", "bot_Limit"]
    Path(".env").write_text("".join(f"{name}=1\n" for name in [*spellings, "bot_lImit"]))
    assert problems_of() == [
        ".env (BOT_LIMIT, Bot_limit, bOt_limit, boT_limit, bot_Limit and 2 more): these names "
        "differ only in case; botsession reads names without regard to case, so set only one "
        "of them"
    ]


# --- under a memory cap ----------------------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is enforced on Linux")
@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            'timeout: "' + "${BIG}" * 20_000 + '"\n',  # 1.2 GB if expanded
            "bot.yaml:1:10: timeout: with its ${…} expanded the value is more than 65536 "
            "characters long; that is the limit",
        ),
        (
            'a: &a "${HALF}${HALF}"\nb: [' + ", ".join(["*a"] * 9000) + "]\n",  # 540 MB
            "bot.yaml:1:4: b[33]: the keys and values of this file add up to more than 2097152 "
            "characters with aliases and ${…} expanded (a long value used through many aliases?)",
        ),
    ],
)
def test_expansion_bombs_are_config_errors_under_a_memory_cap(
    yaml_text: str, expected: str, tmp_path: Path
) -> None:
    """botsession check under a 256 MiB address-space cap: exit 1 with the located problem,
    never a MemoryError or a traceback."""
    (tmp_path / "bot.yaml").write_text(yaml_text)
    (tmp_path / ".env").write_text(f"BIG={'x' * 60_000}\nHALF={'x' * 30_000}\n")
    cap = 256 * 1024 * 1024
    # The cap is set by the child itself: preexec_fn is unsafe in a process with threads.
    command = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))\n"
        "from botsession.cli import main\n"
        "sys.exit(main(['check']))\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("BOT_")}
    result = subprocess.run(
        [sys.executable, "-c", command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"invalid botsession configuration (1 problem):\n  - {expected}\n"


# --- YAML booleans ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "found"),
    [
        ("true", "found True"),
        ("True", "found True"),
        ("TRUE", "found True"),
        ("false", "found False"),
        ("False", "found False"),
        ("FALSE", "found False"),
        ("yes", "unable to parse string as an integer, found 'yes'"),
        ("Yes", "unable to parse string as an integer, found 'Yes'"),
        ("NO", "unable to parse string as an integer, found 'NO'"),
        ("On", "unable to parse string as an integer, found 'On'"),
        ("off", "unable to parse string as an integer, found 'off'"),
    ],
)
def test_only_true_and_false_in_any_case_are_yaml_booleans(written: str, found: str) -> None:
    """limit: True (or TRUE, true) is the boolean True; Yes, NO, On, off are the words."""
    Path("bot.yaml").write_text(f"limit: {written}\n")
    assert problems_of() == [f"bot.yaml:1:8: limit: expected a valid integer, {found}"]


@pytest.mark.parametrize(("written", "value"), [("True", True), ("FALSE", False), ("Yes", "Yes")])
def test_yaml_booleans_are_read_as_written(written: str, value: object) -> None:
    """The reader gives True for True, False for FALSE, and the text for Yes."""
    Path("bot.yaml").write_text(f"key: {written}\n")
    assert read_yaml(Path("bot.yaml"), "bot.yaml", {}).data == {"key": value}


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"proxy": "socks5://127.0.0.1:" + "9" * 5000},
            "proxy: the port must be a number from 1 to 65535, found 5000 digits",
        ),
        (
            {"api": {"base": "http://127.0.0.1:" + "1" * 5000}},
            "api.base: the port must be a number from 1 to 65535, found 5000 digits",
        ),
        (
            {"proxy": "socks5://[" + "g" * 100_000 + "]:1080"},
            "proxy: 'gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg'… (100000 "
            "characters) is not an IPv6 address",
        ),
    ],
)
def test_a_huge_port_or_address_is_named_in_a_short_message(
    settings: dict[str, Any], expected: str
) -> None:
    """A port of thousands of digits or an address of 100,000 characters is a problem whose
    message stays short (it quoted them whole, or failed in Python's int())."""
    with pytest.raises(ConfigError) as caught:
        load_config(**settings)
    [problem] = caught.value.problems
    assert str(problem).endswith(expected)
    assert len(str(problem)) < 300


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("g" * 60, "'" + "g" * 60 + "'"),
        ("g" * 61, "'" + "g" * 60 + "'… (61 characters)"),
    ],
)
def test_an_address_is_quoted_whole_up_to_60_characters(address: str, shown: str) -> None:
    """A bad IPv6 address of 60 characters is quoted whole; from 61 on it is cut at 60."""
    with pytest.raises(ConfigError) as caught:
        load_config(proxy=f"socks5://[{address}]:1080")
    [problem] = caught.value.problems
    assert problem.message == f"{shown} is not an IPv6 address"


def test_a_port_with_leading_zeros_is_still_a_port() -> None:
    """Leading zeros do not count towards the port's digits."""
    assert load_config(proxy="socks5://127.0.0.1:0001080").proxy[0].port == 1080
