"""The benchmark runs end to end with tiny counts, so it cannot rot unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from . import daemons

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.daemons
def test_benchmark_smoke_run() -> None:
    """benchmarks/run.py --smoke measures every route and client and prints all its tables."""
    for name in ("danted", "microsocks", "tinyproxy"):
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
    for route in ("direct", "Dante (SOCKS5)", "3-hop chain"):
        for client in (
            "botsession (plain aiohttp)",
            "aiogram AiohttpSession(proxy=)",
            "botsession (aiogram Bot)",
        ):
            assert f"| {route} | {client} | " in out
    assert "| Dante (SOCKS5) | raw aiohttp-socks connector | " in out
    assert "| botsession (aiogram Bot) | 1 |" in out  # one tunnel: keep-alive through the chain
    assert "| load + validate chain.yaml, ms |" in out
    assert "| `botsession check` / `import aiogram` |" in out
    assert "| botsession / aiogram's session, 3-hop chain, concurrent |" in out
