"""Long polling through a primary that flaps (#18): a bot receives every update exactly once,
and no update waits longer than the long-poll timeout plus the hedge delay.

    .venv/bin/python benchmarks/long_poll.py                     # 120 s per framework
    .venv/bin/python benchmarks/long_poll.py --seconds 30 --period 2 --frameworks aiogram

For each framework in turn (aiogram's ``Dispatcher.start_polling``, PTB's
``Updater.start_polling``, both through botsession) it starts the servers of
``benchmarks/soak.py`` — a stand-in Bot API that long-polls, the primary's proxy behind a relay
that flaps every ``--period`` seconds (healthy, silent, healthy, refusing, healthy, hanging up,
…; with ``--reset-established`` the tunnels through it, the long poll's among them, are reset
when a fault begins), a working fallback — and pushes an update every ``--every`` seconds for
``--seconds``. It prints a Markdown table: updates pushed, handled once, never handled, handled
more than once, and how long updates waited from being pushed to being handled (median, p99,
max) against the bound: the long-poll timeout (``--poll-timeout``) plus the hedge delay (2 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: benchmarks/ is on the path, the root is not
    sys.path.insert(0, str(ROOT))

from benchmarks.soak import percentile, servers, switch_log  # noqa: E402
from botsession.config_schema import DEFAULT_HEDGE_AFTER  # noqa: E402
from tests.flapping import FAULTS, polling, update  # noqa: E402
from tests.servers import BackgroundLoop  # noqa: E402

FRAMEWORKS = ("aiogram", "ptb")
SETTLE = 30.0
"""After the last push, the longest wait for the updates still to be handled (seconds)."""


async def run(framework: str, args: argparse.Namespace, background: BackgroundLoop) -> str:
    """One framework's run; its table row."""
    with servers(background, args) as started, switch_log():
        started.relay.start()
        settings = {
            "proxy": started.relay.url(),
            "fallback": [started.fallback.url()],
            "api": {"base": started.api.base},
        }
        pushed: dict[int, float] = {}
        handled: list[tuple[int, float]] = []
        count = int(args.seconds / args.every)

        all_handled = asyncio.Event()

        def handle(number: int) -> None:
            handled.append((number, time.monotonic()))
            if len({n for n, _ in handled}) >= count:
                all_handled.set()

        async with polling(framework, settings, handle, poll_timeout=args.poll_timeout):
            for number in range(1, count + 1):
                pushed[number] = time.monotonic()
                await asyncio.to_thread(started.api.push_update, update(number))
                await asyncio.sleep(args.every)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_handled.wait(), SETTLE)
    times = Counter(number for number, _ in handled)
    first = {}
    for number, at in handled:
        first.setdefault(number, at)
    waits = [first[number] - pushed[number] for number in first if number in pushed]
    bound = args.poll_timeout + DEFAULT_HEDGE_AFTER
    cells = [
        framework,
        str(count),
        str(sum(1 for number in pushed if times[number] == 1)),
        str(sum(1 for number in pushed if times[number] == 0)),
        str(sum(1 for number in pushed if times[number] > 1)),
        *(f"{value:.2f}" for value in (percentile(waits, 0.5) or 0, percentile(waits, 0.99) or 0)),
        f"{max(waits, default=0):.2f}",
        f"{bound:g}",
        str(started.relay.resets),
        str(started.relay.fault_accepts),
    ]
    return "| " + " | ".join(cells) + " |"


async def main_async(args: argparse.Namespace) -> list[str]:
    rows = []
    for framework in args.frameworks:
        background = BackgroundLoop()
        try:
            print(f"polling with {framework} …", file=sys.stderr)
            rows.append(await run(framework, args, background))
        finally:
            background.close()
    return rows


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--every", type=float, default=0.25, help="seconds between updates")
    parser.add_argument("--period", type=float, default=5.0, help="the relay's window, s")
    parser.add_argument("--poll-timeout", type=int, default=10)
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--reset-established", action="store_true")
    args = parser.parse_args(argv)
    args.frameworks = [name for name in args.frameworks.split(",") if name]
    if any(name not in FRAMEWORKS for name in args.frameworks):
        parser.error(f"--frameworks: choose from {', '.join(FRAMEWORKS)}")
    # What benchmarks/soak.py's servers() reads.
    args.server_delay, args.close_connections, args.faults = 0.0, False, FAULTS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    rows = asyncio.run(main_async(args))
    tunnels = "reset when a fault begins" if args.reset_established else "left alone"
    print(
        f"Long polling for {args.seconds:g} s, an update every {args.every:g} s; the primary flaps "
        f"every {args.period:g} s; established tunnels {tunnels}; long-poll timeout "
        f"{args.poll_timeout} s.\n"
    )
    print(
        "| framework | updates | handled once | never | more than once | wait p50 s "
        "| wait p99 s | wait max s | bound s | tunnels reset | dead-route connects |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for line in rows:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
