"""The largest input of each kind botsession accepts, loaded: time and peak memory.

    python3 benchmarks/input_sizes.py      # one to three minutes; prints a Markdown table

Each input is built in a temporary directory and loaded with ``load_config`` in a fresh
process (after a first, empty load, so that imports are not counted). Time is the median of
three loads in that process. Memory is given twice: the process's peak resident set size
(``ru_maxrss``, which includes the interpreter and its imports: see the first row), and the
peak of Python allocations during one load (``tracemalloc``, in a second process, because
tracing slows the loads down).

It runs with this interpreter when it can import botsession's dependencies, else with
``.venv/bin/python`` (see docs/development.md).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Case:
    name: str
    """What the input is, for the table."""
    write: Callable[[Path], None]
    """Writes the input's files into a directory."""
    environment: Callable[[], dict[str, str]] = dict
    """Variables set in the loading process itself (too many for a command line)."""


def _filled(line: Callable[[int], str], size: int) -> str:
    """Lines ``line(0)``, ``line(1)``, … up to ``size`` bytes."""
    lines: list[str] = []
    total = number = 0
    while True:
        text = line(number) + "\n"
        if total + len(text) > size:
            return "".join(lines)
        lines.append(text)
        total += len(text)
        number += 1


def _write(directory: Path, name: str, text: str) -> None:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)


CHAIN = "proxy:\n  - socks5://127.0.0.1:1080\n  - url: http://bot@127.0.0.1:3128\n"


def _empty(directory: Path) -> None:
    """Nothing to read: the baseline of the interpreter and its imports."""


def _yaml_comments(directory: Path) -> None:
    body = CHAIN + "    password: ${PROXY_PASSWORD}\n"
    _write(directory, "bot.yaml", body + _filled(lambda n: f"# note {n:07d}" + "." * 40, MIB - 200))
    _write(directory, ".env", "PROXY_PASSWORD=secret\n")


def _yaml_unknown_keys(directory: Path) -> None:
    # 9,799 lines of 107 bytes; 9,999 values is the most a document may have.
    _write(directory, "bot.yaml", _filled(lambda n: f"key{n:05d}: '{'v' * 94}'", MIB))


def _yaml_long_value(directory: Path) -> None:
    _write(directory, "bot.yaml", "api:\n  base: '" + "a" * (MIB - 20) + "'\n")


def _dotenv_other_variables(directory: Path) -> None:
    _write(directory, ".env", _filled(lambda n: f"OTHER_{n:06d}=value", MIB))


def _dotenv_settings(directory: Path) -> None:
    # Each line a layer merged into the same hop: quadratic (minutes) before issue #17.
    _write(directory, ".env", _filled(lambda n: f"BOT_PROXY__X{n:06d}=1", MIB))


def _environment_settings() -> dict[str, str]:
    return {f"BOT_PROXY__X{n:06d}": "1" for n in range(MIB // 20)}


def _environment_passwords() -> dict[str, str]:
    return {f"BOT_PROXY__X{n:05d}": f'{{"password": "secret-{n:05d}"}}' for n in range(MIB // 48)}


def _interpolation_value(directory: Path) -> None:
    _write(directory, ".env", "PROXY_PASSWORD=" + "p" * (64 * KIB - 1) + "\n")
    _write(directory, "bot.yaml", CHAIN + "    password: ${PROXY_PASSWORD}\n")


def _interpolation_aliases(directory: Path) -> None:
    # 31 uses of a value of 64 Ki characters: just under the 2 Mi characters a file may expand to.
    _write(directory, ".env", "BASE=" + "b" * (64 * KIB - 30) + "\n")
    uses = ", ".join(["*b"] * 30)
    _write(directory, "bot.yaml", f"bases: [&b 'http://${{BASE}}', {uses}]\n")


def _yaml_aliases(directory: Path) -> None:
    # 10,000 aliases of a value of almost 1 MiB: 10 GB to read, refused at 2 Mi characters.
    uses = ", ".join(["*v"] * 9990)
    _write(directory, "bot.yaml", f"a: &v '{'v' * (MIB - 50_000)}'\nb: [{uses}]\n")


def _password_file(directory: Path) -> None:
    _write(directory, "password", "p" * (64 * KIB))
    _write(directory, "bot.yaml", CHAIN + "    password_file: password\n")


CASES = [
    Case("nothing to read (baseline)", _empty),
    Case("bot.yaml, 1 MiB: a valid chain and 1 MiB of comments", _yaml_comments),
    Case("bot.yaml, 1 MiB: a line per unknown key", _yaml_unknown_keys),
    Case("bot.yaml, 1 MiB: one value of 1 MiB", _yaml_long_value),
    Case(".env, 1 MiB: 55,000 variables that are not settings", _dotenv_other_variables),
    Case(".env, 1 MiB: 50,000 unknown hop settings (BOT_PROXY__X…)", _dotenv_settings),
    Case("environment: 52,000 unknown hop settings (1 MiB)", _empty, _environment_settings),
    Case(
        "environment: 21,800 unknown hop settings, each a password (1 MiB)",
        _empty,
        _environment_passwords,
    ),
    Case("${VAR}: a password of 64 Ki characters from .env", _interpolation_value),
    Case("${VAR}: a 64 Ki value used through 30 aliases (2 Mi characters)", _interpolation_aliases),
    Case("bot.yaml, 1 MiB: a value of 0.95 MiB used through 9,990 aliases", _yaml_aliases),
    Case("password_file of 64 KiB", _password_file),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=3, metavar=("CASE", "DIR", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        number, directory, mode = args.child
        return _child(CASES[int(number)], Path(directory), mode)
    python = _python()
    if python != sys.executable:
        return subprocess.run([python, __file__, *(argv or [])], check=False).returncode
    rows = [_measure(number, case) for number, case in enumerate(CASES)]
    print(_render(rows))
    return 0


def _python() -> str:
    if all(importlib.util.find_spec(name) for name in ("pydantic_settings", "yaml", "dotenv")):
        return sys.executable
    venv = ROOT / ".venv" / "bin" / "python"
    if venv.exists():
        return str(venv)
    raise SystemExit("botsession's dependencies are missing: run it with .venv/bin/python")


def _measure(number: int, case: Case) -> dict[str, str]:
    with tempfile.TemporaryDirectory(prefix="botsession-sizes-") as directory:
        case.write(Path(directory))
        size = sum(path.stat().st_size for path in Path(directory).iterdir())
        size += sum(len(k) + len(v) + 2 for k, v in case.environment().items())
        timed = _run_child(number, directory, "time")
        traced = _run_child(number, directory, "trace")
    return {
        "input": case.name,
        "size": _size(size),
        "outcome": timed["outcome"],
        "time": f"{timed['seconds'] * 1000:.0f} ms",
        "rss": f"{timed['rss'] / MIB:.0f} MiB",
        "python": f"{traced['peak'] / MIB:.1f} MiB",
    }


def _run_child(number: int, directory: str, mode: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", str(number), directory, mode]
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("BOT_")}
    environment["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        command, capture_output=True, text=True, env=environment, check=True, timeout=600
    )
    answer: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return answer


def _child(case: Case, directory: Path, mode: str) -> int:
    from botsession import ConfigError, load_config

    with tempfile.TemporaryDirectory() as empty:
        os.chdir(empty)
        load_config()  # imports and first-use caches are not the input's cost
    os.environ.update(case.environment())
    os.chdir(directory)

    def load() -> str:
        try:
            load_config()
        except ConfigError as error:
            return f"ConfigError ({_problems(error.problems)})"
        return "valid"

    if mode == "trace":
        tracemalloc.start()
        load()
        _, peak = tracemalloc.get_traced_memory()
        print(json.dumps({"peak": peak}))
        return 0
    timings, outcome = [], ""
    for _ in range(3):
        started = time.perf_counter()
        outcome = load()
        timings.append(time.perf_counter() - started)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KIB  # KiB on Linux
    print(json.dumps({"outcome": outcome, "seconds": statistics.median(timings), "rss": rss}))
    return 0


def _problems(problems: tuple[object, ...]) -> str:
    """``3 problems``, or ``52,429 problems, 100 shown`` when the error lists only the first."""
    last = str(problems[-1])
    if last.endswith("are above)"):  # "N more problems: not shown (the first 100 are above)"
        total = int(last.split(maxsplit=1)[0]) + len(problems) - 1
        return f"{total:,} problems, {len(problems) - 1} shown"
    return f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"


def _size(size: int) -> str:
    if size >= MIB:
        return f"{size / MIB:.2f} MiB"
    return f"{size / KIB:.1f} KiB" if size >= KIB else f"{size} B"


def _render(rows: list[dict[str, str]]) -> str:
    lines = [
        f"Input sizes, {datetime.date.today().isoformat()}; {_machine()}",
        "",
        "| input | size | outcome | time | peak RSS | peak Python allocations |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    columns = ("input", "size", "outcome", "time", "rss", "python")
    lines += ["| " + " | ".join(row[column] for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def _machine() -> str:
    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


if __name__ == "__main__":
    raise SystemExit(main())
