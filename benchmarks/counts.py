"""Print the counts docs/reliability.md quotes, taken from the test suite itself.

    .venv/bin/python benchmarks/counts.py                # every count (about half a minute)
    .venv/bin/python benchmarks/counts.py --no-resources # without running the 1,000 cycles
    HYPOTHESIS_PROFILE=thorough .venv/bin/python benchmarks/counts.py --no-resources

It collects the tests (nothing runs) and counts the property-based tests and their cases per
run, the broken-config corpus by where each error is reported, and the fault-injection matrix
by client. Then it runs the test of 1,000 create/use/close cycles and prints the figures that
test reports (open file descriptors, resident memory growth, unclosed warnings). Run it from
the repository root with the development venv (it needs pytest, hypothesis and the test
dependencies).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESOURCES_TEST = "tests/test_resources.py::test_a_thousand_sessions_leave_no_trace"
VARIABLE_KINDS = ("an environment variable", "the .env file and variable")
"""The corpus's location kinds that point at variables rather than at the file."""


class Collected:
    """A pytest plugin that keeps the collected test items."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def pytest_collection_finish(self, session: Any) -> None:
        self.items = list(session.items)


def collect() -> list[Any]:
    plugin = Collected()
    options = ["--collect-only", "-q", "-p", "no:cacheprovider", "--no-cov", "tests"]
    output = io.StringIO()
    with contextlib.redirect_stdout(output):  # not the list of every test
        code = pytest.main(options, plugins=[plugin])
    if code != 0:
        raise SystemExit(f"collecting the tests failed:\n{output.getvalue()[-3000:]}")
    return plugin.items


def properties(items: list[Any]) -> list[str]:
    """One line per distinct number of cases: how many property tests run that many."""
    cases: collections.Counter[int] = collections.Counter()
    for item in items:
        test = getattr(item, "obj", None)
        if getattr(test, "is_hypothesis_test", False):
            # hypothesis keeps the settings a test runs with on the test function.
            settings = getattr(test, "_hypothesis_internal_use_settings", None)
            if settings is None:
                from hypothesis import settings as current

                settings = current.default
            cases[settings.max_examples] += 1
    return [
        f"property-based tests: {count} properties, {examples} cases each per run"
        for examples, count in sorted(cases.items())
    ]


def corpus(items: list[Any]) -> list[str]:
    """The broken-config corpus, by the kind of location each error is checked at."""
    kinds: collections.Counter[str] = collections.Counter()
    for item in items:
        if getattr(item, "originalname", "") != "test_bad_config_corpus":
            continue
        case = item.callspec.params["case"]
        kinds[item.module.location_kind(item.module.expectations(case).at)] += 1
    variables = sum(kinds[kind] for kind in VARIABLE_KINDS)
    return [
        f"broken configs in tests/bad_configs/: {sum(kinds.values())}",
        f"  reported at file:line:col: {kinds['file:line:col']}",
        f"  reported at the file as a whole: {kinds['the file as a whole']}",
        f"  reported at environment or .env variables: {variables}",
    ]


def fault_matrix(items: list[Any]) -> list[str]:
    """The fault-injection matrix's cells (one test case each), by the client they go through."""
    plain = aiogram = 0
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.path.name != "test_fault_matrix.py" or "cell" not in params:
            continue
        if item.originalname.startswith("test_aiogram"):
            aiogram += 1
        else:
            plain += 1
    return [
        f"fault-matrix cells: {plain + aiogram}",
        f"  through a plain aiohttp session: {plain}",
        f"  through aiogram's Bot: {aiogram}",
    ]


def resources() -> list[str]:
    """The figures the 1,000-cycle test prints (it fails, and so does this, if they are bad)."""
    command = [sys.executable, "-m", "pytest", RESOURCES_TEST, "-s", "-q"]
    command += ["-p", "no:cacheprovider", "--no-cov"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    figures = [line for line in result.stdout.splitlines() if line.startswith("1000 cycles:")]
    if result.returncode != 0 or not figures:
        raise SystemExit(f"{RESOURCES_TEST} failed:\n{result.stdout[-3000:]}")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--no-resources", action="store_true", help="do not run the 1,000-cycle resources test"
    )
    args = parser.parse_args(argv)
    items = collect()
    lines = [*properties(items), *corpus(items), *fault_matrix(items)]
    if not args.no_resources:
        lines += resources()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
