"""One client in its own process, timing runs on command.

A bot runs one HTTP stack, not five: in a shared process one library's caches (botsession keeps
aiogram's ``Response[...]`` models alive, for instance) would speed up another's, and one
client's garbage would be collected in another's run. So each client lives in a worker:

    python -m benchmarks.worker CLIENT BASE

It reads the routes as one line of JSON on stdin (they hold proxy passwords, which a command
line would show to every user of the machine), warms every route up and prints ``ready``. Then
it answers each further line ``ROUTE MODE CALLS WIDTH`` (``MODE`` is ``sequential`` or
``concurrent``) with the seconds the run took. Each run builds a fresh client (its own tunnels)
and closes it after; only the calls are timed.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time

from benchmarks import clients


async def serve(kind: type[clients.Client], base: str, routes: list[clients.Route]) -> None:
    for route in routes:  # untimed: imports and first-use caches
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
        gc.collect()  # every run starts from the same garbage-collector state
        started = time.perf_counter()
        if mode == "sequential":
            await clients.sequential(client, int(calls))
        else:
            await clients.concurrent(client, int(calls), int(width))
        elapsed = time.perf_counter() - started
        await client.stop()
        print(f"{elapsed:.6f}", flush=True)


def main() -> None:
    name, base = sys.argv[1:3]
    kind = next(kind for kind in clients.ALL if kind.__name__ == name)
    routes = [clients.Route(item["name"], tuple(item["urls"])) for item in json.loads(input())]
    asyncio.run(serve(kind, base, routes))


if __name__ == "__main__":
    main()
