"""The benchmark runs end to end with tiny counts, so it cannot rot unnoticed."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

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
    """The floors table has a row for ``what`` with a figure, its bound and a verdict."""
    row = (
        rf"^\| {re.escape(what)} \| \d+\.\d\d \| [^|]* \| {re.escape(required)} \| (ok|MISSED) \|$"
    )
    assert re.search(row, out, re.MULTILINE), f"no floor row {what!r} ({required})"


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
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
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
        if socks:
            _floor(out, f"botsession / python-telegram-bot, Dante (SOCKS5), {mode}", "≥ 2")
            _floor(
                out,
                f"httpx via botsession / httpx's own SOCKS5, Dante (SOCKS5), {mode}",
                "≥ 1",
            )
    _silent_primary_table(out)
    if socks:
        ptb = "PTB via botsession / PTB's own HTTPXRequest(proxy=), Dante (SOCKS5)"
        _floor(out, f"{ptb}, sequential", "≥ 2.5")
        _floor(out, f"{ptb}, concurrent", "≥ 8")
