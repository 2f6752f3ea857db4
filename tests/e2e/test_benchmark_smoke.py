"""The benchmark runs end to end with tiny counts, so it cannot rot unnoticed."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from . import daemons

ROOT = Path(__file__).resolve().parents[2]
HTTPS_ROUTE = "HTTPS proxy, https Bot API"
ROUTES = ("direct", "Dante (SOCKS5)", "3-hop chain", HTTPS_ROUTE)
OURS = (
    "botsession (plain aiohttp)",
    "botsession (aiogram Bot)",
    "botsession (python-telegram-bot Bot)",
    "botsession (httpx AsyncClient)",
)
THEIRS = (  # their own proxy support, which cannot chain proxies
    "python-telegram-bot HTTPXRequest(proxy=)",
    "httpx AsyncClient(proxy=)",
)


def _floor(out: str, what: str, required: str) -> None:
    """The floors table has a row for ``what`` with a figure, its best, its bound and a
    verdict other than FAILED (missed by a factor of 2 even at its best)."""
    figure = r"\d+\.\d\d"
    row = (
        rf"^\| {re.escape(what)} \| {figure} \| [^|]* \| {figure} \| {re.escape(required)} "
        r"\| (ok|MISSED) \|$"
    )
    assert re.search(row, out, re.MULTILINE), f"no floor row {what!r} ({required}), or FAILED"


def _silent_primary_table(out: str) -> None:
    """The silent-primary table: botsession's sessions succeed, aiogram's own (capped in the
    smoke run) does not, and the default's time to first success has its floor."""
    assert "Time to first successful request with a silent primary" in out
    success = r"\| 1 \| \d+\.\d{3} s \| \d+\.\d\d ms \|$"
    for client in (
        "botsession aiogram `Bot`, defaults (`fallback_hedge_after` 2 s)",
        "botsession aiogram `Bot`, `fallback_hedge_after: null` (`connect_timeout` 10 s)",
    ):
        assert re.search(rf"^\| {re.escape(client)} {success}", out, re.MULTILINE), client
    aiogram = "aiogram `AiohttpSession(proxy=<silent primary>)` (no fallback)"
    row = rf"^\| {re.escape(aiogram)} \| 1 \| not within \d+\.\d s \(the smoke run's cap"
    assert re.search(row, out, re.MULTILINE), "no capped row for aiogram's own session"
    _floor(out, "first success with a silent primary, botsession defaults, s", "≤ 2.5")


@pytest.mark.daemons
def test_benchmark_smoke_run() -> None:
    """benchmarks/run.py --smoke measures every route and client and prints all its tables."""
    for name in ("danted", "microsocks", "tinyproxy", "stunnel4"):
        daemons.require_binary(name)
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--here"],
        capture_output=True,
        text=True,
        timeout=900,  # a bound on a hang: the run takes 1-7 minutes
        check=False,
        cwd=ROOT,
    )
    # Exit code 1: a floor missed grossly even at its best, as with 10 ms more per request.
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gross regression" not in result.stderr
    out = result.stdout
    # httpx (and so python-telegram-bot's HTTPXRequest) needs httpx[socks] for Dante's SOCKS5.
    socks = importlib.util.find_spec("socksio") is not None
    for route in ROUTES:
        for client in OURS:
            assert f"| {route} | {client} | " in out
        # aiogram's own session (aiohttp-socks) cannot take an HTTPS proxy.
        aiogram = f"| {route} | aiogram AiohttpSession(proxy=) | "
        assert (aiogram in out) is (route != HTTPS_ROUTE)
        for client in THEIRS:
            if route in ("direct", HTTPS_ROUTE) or (route == "Dante (SOCKS5)" and socks):
                assert f"| {route} | {client} | " in out
            if route == "3-hop chain":
                assert f"| {route} | {client} | " not in out
    assert "| Dante (SOCKS5) | raw aiohttp-socks connector | " in out
    assert f"| {HTTPS_ROUTE} | raw aiohttp ClientSession(proxy=) | " in out
    for client in OURS:  # one tunnel each: keep-alive through the chain and the HTTPS proxy
        assert f"| 3-hop chain | {client} | 1 |" in out
        assert f"| {HTTPS_ROUTE} | {client} | 1 |" in out
        for route in ("3-hop chain", HTTPS_ROUTE):
            _floor(out, f"tunnels per 20 requests, {route}, {client}", "≤ 2")
    assert "| load + validate chain.yaml, ms |" in out
    assert "| `botsession check` / `import aiogram` |" in out
    for mode in ("sequential", "concurrent"):
        _floor(out, f"botsession / aiogram's session, 3-hop chain, {mode}", "≥ 1")
        _floor(out, f"botsession / raw connector, 3-hop chain, {mode}", "≥ 0.98")
    _silent_primary_table(out)
    if socks:  # against their own clients, given botsession's pool
        for what, sequential, concurrent in (
            ("botsession / python-telegram-bot", "≥ 2", "≥ 4"),
            ("PTB via botsession / PTB's own HTTPXRequest(proxy=)", "≥ 2", "≥ 5"),
            ("httpx via botsession / httpx's own SOCKS5", "≥ 1.25", "≥ 3"),
        ):
            _floor(out, f"{what}, Dante (SOCKS5), sequential", sequential)
            _floor(out, f"{what}, Dante (SOCKS5), concurrent", concurrent)


def _report(ours: float, best: float, mode: str = "sequential") -> Any:
    """A benchmark report of one round on Dante in which botsession's plain session made
    ``ours`` times the raw connector's rate, and its best slice ``best`` times the raw one's."""
    from benchmarks import clients, run

    report = run.Report(run.SMOKE)
    raw, plain = "raw aiohttp-socks connector", clients.BotsessionPlain.name
    report.add("Dante (SOCKS5)", raw, mode, 1000.0, 1.0)
    report.add_best("Dante (SOCKS5)", raw, mode, 2000.0)
    report.add("Dante (SOCKS5)", plain, mode, 1000.0 * ours, ours)
    report.add_best("Dante (SOCKS5)", plain, mode, 2000.0 * best)
    return report


def test_a_gross_regression_fails_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    """A rate ratio below a quarter of its floor even in the best slices, or a count over
    twice its bound, fails the benchmark run and says which floor; a smaller miss, or one the
    best slices do not confirm, fails it only with --strict."""
    from benchmarks import run

    what = "botsession / raw connector, Dante (SOCKS5), sequential"
    slowed = _report(ours=0.04, best=0.05)  # what 10 ms per request did to the smoke run
    assert run.exit_code(slowed, strict=False) == 1
    message = f"gross regression: {what}: 0.04 (best 0.05), floor ≥ 0.98: missed by a factor of 4"
    assert message in capsys.readouterr().err
    assert f"| {what} | 0.04 |  | 0.05 | ≥ 0.98 | FAILED |" in slowed.render()
    for report in (_report(ours=0.9, best=0.9), _report(ours=0.2, best=0.3)):
        assert run.exit_code(report, strict=False) == 0
        assert run.exit_code(report, strict=True) == 1
        assert "gross regression" not in capsys.readouterr().err
    assert run.exit_code(_report(ours=1.0, best=1.0), strict=True) == 0
    tunnels = _report(ours=1.0, best=1.0)
    tunnels.tunnels["3-hop chain", "botsession (aiogram Bot)"] = 5
    assert run.exit_code(tunnels, strict=False) == 1
    assert "tunnels per 20 requests, 3-hop chain, botsession (aiogram Bot): 5.00" in (
        capsys.readouterr().err
    )
    tunnels.tunnels["3-hop chain", "botsession (aiogram Bot)"] = 3
    assert run.exit_code(tunnels, strict=False) == 0
