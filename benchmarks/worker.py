"""One client in its own process, timing runs on command.

A bot runs one HTTP stack, not five: in a shared process one library's caches (botsession keeps
aiogram's ``Response[...]`` models alive, for instance) would speed up another's, and one
client's garbage would be collected in another's run. So each client lives in a worker:

    python -m benchmarks.worker CLIENT BASE

It reads the routes as one line of JSON on stdin (they hold proxy passwords, which a command
line would show to every user of the machine), warms every route up and prints ``ready``. Then
it answers each further line ``ROUTE MODE CALLS WIDTH`` (``MODE`` is ``sequential`` or
``concurrent``) with the time the run took, slice by slice, as one line of JSON: ``[[calls,
seconds], ...]``. A slice is ``clients.SLICE`` sequential calls, or one batch of ``WIDTH``
concurrent ones. Each run builds a fresh client (its own tunnels), makes one untimed call (which
opens the first tunnel; before concurrent calls, one untimed batch of ``WIDTH``, which opens
the tunnels they use) and closes the client after; only the calls are timed.

    python -m benchmarks.worker --first-success KIND BASE

times one client's first ``getMe`` through a silent primary proxy instead (``KIND`` is a key of
``clients.SILENT_PRIMARY``). It reads ``{"silent": URL, "fallback": URL, "next": N, "cap":
SECONDS or null}`` as one line of JSON on stdin, warms aiogram up directly (untimed), builds the
client, times its first ``getMe`` and each of the next ``N``, and prints one line of JSON:
``{"first": s, "next": [s, ...]}`` or ``{"failed_after": s, "error": name, "capped": bool}``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from typing import Any

from benchmarks import clients


async def serve(kind: type[clients.Client], base: str, routes: list[clients.Route]) -> None:
    for route in routes:  # untimed: imports and first-use caches
        if not clients.usable(kind, route):
            continue
        client = kind(route, base)
        await client.start()
        await clients.sequential(client, 3)
        await client.stop()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        route, mode, calls, width = line.split()
        client = kind(routes[int(route)], base)
        await client.start()
        # Untimed, for every client alike: the first request opens the tunnel (two TLS
        # handshakes on the HTTPS proxy route), as python-telegram-bot's initialize() does;
        # before concurrent calls, one batch opens the ``width`` tunnels they keep using.
        # What is timed is the steady state; opening tunnels has a table of its own.
        if mode == "sequential":
            await client.call()
        else:
            await clients.concurrent(client, int(width), int(width))
        gc.collect()  # every run starts from the same garbage-collector state
        slices = []
        for size in clients.slices(mode, int(calls), int(width)):
            started = time.perf_counter()
            if mode == "sequential":
                await clients.sequential(client, size)
            else:
                await clients.concurrent(client, size, size)
            slices.append([size, time.perf_counter() - started])
        await client.stop()
        print(json.dumps(slices), flush=True)


async def first_success(kind: str, base: str, spec: dict[str, Any]) -> dict[str, Any]:
    # Untimed: imports and aiogram's first-use caches, straight to the stand-in.
    warmer = clients.AiogramOwn if kind == "aiogram" else clients.BotsessionAiogram
    warm = warmer(clients.Route("direct", ()), base)
    await warm.start()
    await clients.sequential(warm, 3)
    await warm.stop()
    bot = clients.silent_primary_bot(kind, base, spec["silent"], spec["fallback"])
    gc.collect()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(spec["cap"]) as cap:
            await bot.get_me()
            first = time.perf_counter() - started
            following = []
            for _ in range(spec["next"]):
                call = time.perf_counter()
                await bot.get_me()
                following.append(time.perf_counter() - call)
    except Exception as error:  # whatever the client raises is the result
        capped = cap.expired()
        return {
            "failed_after": time.perf_counter() - started,
            "error": _public_name(type(error)),
            "capped": capped,
        }
    finally:
        await bot.session.close()
    return {"first": first, "next": following}


def _public_name(kind: type[BaseException]) -> str:
    """``python_socks.ProxyTimeoutError`` rather than ``python_socks._errors.…``."""
    if kind.__module__ == "builtins":
        return kind.__qualname__
    parts = []
    for part in kind.__module__.split("."):
        if part.startswith("_"):
            break
        parts.append(part)
    return ".".join([*parts, kind.__qualname__])


def main() -> None:
    if sys.argv[1] == "--first-success":
        kind, base = sys.argv[2:4]
        result = asyncio.run(first_success(kind, base, json.loads(input())))
        print(json.dumps(result), flush=True)
        return
    name, base = sys.argv[1:3]
    kind = next(kind for kind in clients.ALL if kind.__name__ == name)
    routes = [
        clients.Route(item["name"], tuple(item["urls"]), item["ca_file"], item["base"])
        for item in json.loads(input())
    ]
    asyncio.run(serve(kind, base, routes))


if __name__ == "__main__":
    main()
