"""Count the Python function calls of 1,000 getMe through aiogram's own session and botsession's.

    .venv/bin/python benchmarks/calls.py

Both go straight to the stand-in Bot API (no proxy: the tunnel is opened once, so what is
counted is the per-request path). Each client is warmed up first; cProfile then counts every
Python call of the 1,000 requests, the event loop's and aiohttp's included, with the garbage
collector paused (so the counts are the same from run to run).
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import os
import pstats
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REQUESTS = 1000


async def count_calls(kind: type, base: str) -> tuple[int, int]:
    """All Python calls of ``REQUESTS`` getMe, and those into aiogram's and botsession's code."""
    from benchmarks import clients

    client = kind(clients.Route("direct", ()), base)
    await client.start()
    try:
        await clients.sequential(client, 50)  # untimed: imports, caches, the connection
        # No garbage collection while counting: what it sets off (aiogram rebuilding response
        # models whose cache it cleared) would make the counts differ from run to run.
        gc.collect()
        gc.disable()
        profile = cProfile.Profile()
        profile.enable()
        try:
            await clients.sequential(client, REQUESTS)
        finally:
            profile.disable()
            gc.enable()
    finally:
        await client.stop()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    ours = sum(
        calls
        for (filename, _, _), (_, calls, *_) in stats.items()
        if any(f"{os.sep}{package}{os.sep}" in filename for package in ("aiogram", "botsession"))
    )
    return sum(calls for _, calls, *_ in stats.values()), ours


def main() -> int:
    from benchmarks import clients
    from benchmarks.run import _standin

    with _standin() as base:
        for kind in (clients.AiogramOwn, clients.BotsessionAiogram):
            total, ours = asyncio.run(count_calls(kind, base))
            print(
                f"{kind.name}: {total:,} Python calls per {REQUESTS:,} getMe, "
                f"{ours:,} of them into aiogram's or botsession's code"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
