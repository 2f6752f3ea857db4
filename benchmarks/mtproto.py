"""MTProto connect times: botsession's Telethon connection against Telethon's own ``proxy=`` (#20).

    .venv/bin/python benchmarks/mtproto.py               # about 2 minutes
    .venv/bin/python benchmarks/mtproto.py --reps 40 --silent-runs 2 --own-default-runs 0

It starts, on loopback: a stand-in data center in a process of its own, so that it does not
share the clients' GIL (``tests.mtproto_dc.MTProtoDC``, which records when each connection's
first MTProto frame is complete, then hangs up; ``time.monotonic()`` is the same clock in every
process), Debian's ``danted``, ``microsocks`` and ``tinyproxy``, and stops them
at the end. A real ``TelegramClient`` (Telethon's defaults, a ``MemorySession`` whose DC 2 is
the stand-in) is timed from the start of ``client.connect()`` until the stand-in holds the whole
first frame (an unencrypted ``req_pq_multi``, TcpFull), a new client and a new stream each time.

Two tables:

* **Time to an open stream**, ``--reps`` connects per client, interleaved in palindromic rounds
  (A B C C B A, so that drift of the machine cancels out) after one untimed connect each:
  direct (Telethon's own connection, no proxy: the floor), through Dante (SOCKS5) with
  Telethon's own ``proxy=`` (python-socks) and with botsession's ``telethon_connection``, and
  through the 3-hop chain of ``benchmarks/run.py`` (Dante → microsocks with a password →
  tinyproxy with a password), which only botsession can express. Median and p90 in ms, and
  botsession's median over Telethon's own on the same route. The proxies' logs are read
  afterwards to check that each connect went through its route.
* **A silent primary**: the primary proxy accepts connections and never answers (a server
  here), Dante is the fallback. botsession's first frame arrives after the hedge delay
  (``fallback_hedge_after``, 2 s by default; ``--silent-runs`` runs, each with a class, and so
  a router, of its own, then ``--next`` connects with that class), or after ``connect_timeout``
  (10 s) without hedging (``--no-hedge-runs``). Telethon's own ``proxy=`` has no fallback: it
  fails, after ``(connection_retries + 1) * (timeout + retry_delay)``; with its defaults (10 s,
  5 retries, 1 s: ``--own-default-runs``, each about 66 s, alongside the other runs) and with
  ``timeout=2, connection_retries=0, retry_delay=0`` (``--own-small-runs``). The last column
  counts the connections the silent proxy accepted, per run.

Only 127.0.0.0/8 is used. Run it with the development venv (Telethon, python-socks).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import logging
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: benchmarks/ is on the path, the root is not
    sys.path.insert(0, str(ROOT))

from telethon import TelegramClient  # noqa: E402
from telethon.sessions import MemorySession  # noqa: E402

from benchmarks.run import _machine  # noqa: E402
from botsession.config_schema import DEFAULT_HEDGE_AFTER  # noqa: E402
from botsession.telethon import telethon_connection  # noqa: E402
from tests.e2e import daemons  # noqa: E402
from tests.mtproto_dc import MTProtoDC  # noqa: E402
from tests.servers import BackgroundLoop, SilentServer  # noqa: E402
from tests.support import LOOPBACK  # noqa: E402

DC_ID = 2
"""The DC the clients' sessions point at the stand-in."""
SERVE_DC = "--serve-dc"
"""Run as the stand-in DC's process: print the port, then a line for each connection's first
frame (``frame <when complete> <1 if req_pq_multi>``) or failure (``error <what>``), until stdin
is closed."""
FRAME_WAIT = 5.0
"""The longest the stand-in's record of a frame may lag behind the end of ``connect()`` (s)."""
SMALL = {"timeout": 2, "connection_retries": 0, "retry_delay": 0}
"""Telethon's small settings against the silent proxy: one attempt, as long as the hedge delay."""
NO_ROUTE = "cannot express (one proxy only)"


@dataclass
class Contender:
    """A client on a route: ``connect`` makes a new client, connects it once (until the stand-in
    has its first frame or it fails) and disconnects it; what it raised, if anything."""

    route: str
    name: str
    connect: Callable[[], Awaitable[BaseException | None]]
    last_hop: Any = None
    """The daemon whose log shows this route's connects to the DC (None: direct)."""
    timings: list[float] = field(default_factory=list)
    """Seconds from the start of ``connect()`` to the first frame, one per timed connect."""
    connects: int = 0
    """Every connect made, the untimed ones included."""


class ReportingDC(MTProtoDC):
    """The stand-in DC, telling its parent of each connection once it is over."""

    told: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await super().handle(reader, writer)
        lines = [f"error {error}" for error in self.errors]
        self.errors.clear()
        for frame in self.frames[self.told :]:
            lines.append(f"frame {frame.at!r} {int(frame.is_req_pq_multi())}")
        self.told = len(self.frames)
        if lines:
            print("\n".join(lines), flush=True)


def serve_dc() -> int:
    background = BackgroundLoop()
    try:
        dc = ReportingDC(background).start()
        print(dc.port, flush=True)
        sys.stdin.read()  # returns when the parent closes stdin
        dc.stop()
    finally:
        background.close()
    return 0


class RemoteDC:
    """The stand-in DC's process, as the benchmark sees it: its port and the frames it got,
    each as (when it was complete, whether it was a req_pq_multi)."""

    def __init__(self) -> None:
        command = [sys.executable, str(Path(__file__)), SERVE_DC]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        self.port = int(self._process.stdout.readline())
        self.frames: list[tuple[float, bool]] = []
        self.errors: list[str] = []
        self._reader = threading.Thread(target=self._read, name="stand-in DC", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            kind, _, rest = line.strip().partition(" ")
            if kind == "frame":
                at, ok = rest.split()
                self.frames.append((float(at), ok == "1"))
            else:
                self.errors.append(rest)

    def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(FRAME_WAIT)
        self._reader.join(FRAME_WAIT)


def telethon_client(dc: RemoteDC, **options: Any) -> TelegramClient:
    """A Telethon client whose DC 2 is the stand-in; Telethon's defaults but for ``options``."""
    client = TelegramClient(MemorySession(), 1, "x", **options)
    client.session.set_dc(DC_ID, LOOPBACK, dc.port)
    return client


def telethon_contender(route: str, name: str, dc: RemoteDC, **options: Any) -> Contender:
    async def connect() -> BaseException | None:
        client = telethon_client(dc, **options)
        try:
            await client.connect()
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            return error  # the stand-in hangs up after the frame: Telethon's read ends
        finally:
            await client.disconnect()
        return None

    return Contender(route, name, connect)


async def timed_connect(contender: Contender, dc: RemoteDC) -> float:
    """Seconds from the start of ``contender``'s connect to its first frame at the stand-in."""
    before = len(dc.frames)
    started = time.monotonic()
    error = await contender.connect()
    contender.connects += 1
    deadline = time.monotonic() + FRAME_WAIT
    while len(dc.frames) == before:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{contender.name} on {contender.route}: no frame ({error!r})")
        await asyncio.sleep(0.001)
    at, req_pq_multi = dc.frames[before]
    if not req_pq_multi or dc.errors:
        raise RuntimeError(f"{contender.name} on {contender.route}: not req_pq_multi {dc.errors}")
    return at - started


async def measure_streams(contenders: list[Contender], dc: RemoteDC, reps: int) -> None:
    """One untimed connect each, then ``reps`` timed ones each in palindromic rounds."""
    for contender in contenders:
        await timed_connect(contender, dc)
    order = contenders + contenders[::-1]
    for _ in range((reps + 1) // 2):
        for contender in order:
            if len(contender.timings) < reps:
                contender.timings.append(await timed_connect(contender, dc))


# --- the silent primary ----------------------------------------------------------------------


@dataclass
class SilentRuns:
    """One row of the silent-primary table."""

    name: str
    firsts: list[float] = field(default_factory=list)
    """Seconds to the first frame, one per run that got there."""
    failures: list[tuple[float, str]] = field(default_factory=list)
    """Seconds until ``connect()`` failed, and what it raised, one per run that failed."""
    nexts: list[float] = field(default_factory=list)
    """Seconds to the first frame of the connects after a run's first, with the same class."""
    runs: int = 0
    silent_accepts: int = 0


async def botsession_silent(
    row: SilentRuns, dc: RemoteDC, silent: SilentServer, fallback: str, nexts: int, **more: Any
) -> None:
    """One run: a new class (a router that has not met the silent primary yet), its first
    connect and ``nexts`` more."""
    cls = telethon_connection(
        proxy=f"socks5://{LOOPBACK}:{silent.port}", fallback=[fallback], **more
    )
    contender = telethon_contender("silent", row.name, dc, connection=cls)
    row.firsts.append(await timed_connect(contender, dc))
    for _ in range(nexts):
        row.nexts.append(await timed_connect(contender, dc))
    row.runs += 1


async def own_silent(row: SilentRuns, dc: RemoteDC, silent: SilentServer, **options: Any) -> None:
    """One run of Telethon's own ``proxy=`` with the silent proxy: the time until it fails."""
    client = telethon_client(dc, proxy=("socks5", LOOPBACK, silent.port), **options)
    started = time.monotonic()
    try:
        await client.connect()
    except ConnectionError as error:
        row.failures.append((time.monotonic() - started, f"{type(error).__name__}: {error}"))
    else:
        raise RuntimeError(f"{row.name}: connected through a silent proxy")
    finally:
        await client.disconnect()
    row.runs += 1


async def measure_silent(
    args: argparse.Namespace, dc: RemoteDC, background: BackgroundLoop, fallback: str
) -> list[SilentRuns]:
    def silent_server() -> SilentServer:
        return SilentServer(background).start()

    hedge = SilentRuns(f"botsession, defaults (`fallback_hedge_after` {DEFAULT_HEDGE_AFTER:g} s)")
    no_hedge = SilentRuns("botsession, `fallback_hedge_after: null` (`connect_timeout` 10 s)")
    own = SilentRuns(
        "Telethon `proxy=<silent>`, defaults (`timeout=10, connection_retries=5, retry_delay=1`)"
    )
    small = SilentRuns(
        "Telethon `proxy=<silent>`, " + ", ".join(f"`{k}={v}`" for k, v in SMALL.items())
    )
    servers = {id(row): silent_server() for row in (hedge, no_hedge, own, small)}
    try:
        # Telethon's own defaults only wait on an idle socket for a minute: alongside the rest.
        waiting = asyncio.ensure_future(
            _repeat(args.own_default_runs, lambda: own_silent(own, dc, servers[id(own)]))
        )
        for _ in range(args.silent_runs):
            await botsession_silent(hedge, dc, servers[id(hedge)], fallback, args.next)
        for _ in range(args.no_hedge_runs):
            await botsession_silent(
                no_hedge, dc, servers[id(no_hedge)], fallback, args.next, fallback_hedge_after=None
            )
        for _ in range(args.own_small_runs):
            await own_silent(small, dc, servers[id(small)], **SMALL)
        await waiting
    finally:
        for row in (hedge, no_hedge, own, small):
            row.silent_accepts = servers[id(row)].accepted
            servers[id(row)].stop()
    return [row for row in (hedge, no_hedge, own, small) if row.runs]


async def _repeat(times: int, run: Callable[[], Awaitable[None]]) -> None:
    for _ in range(times):
        await run()


# --- the report ------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (inclusive method; the value itself for one)."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(fraction * 100) - 1]


def stream_table(contenders: list[Contender]) -> list[str]:
    lines = [
        "| route | client | connects | median ms | p90 ms | x Telethon's own |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    own = {c.route: c for c in contenders if c.name.startswith("Telethon")}
    for contender in contenders:
        if not contender.timings:
            lines.append(f"| {contender.route} | {contender.name} | {NO_ROUTE} | | | |")
            continue
        median = statistics.median(contender.timings)
        theirs = own.get(contender.route)
        ratio = "-"
        if theirs is not None and theirs.timings:
            ratio = f"{median / statistics.median(theirs.timings):.2f}"
        lines.append(
            f"| {contender.route} | {contender.name} | {len(contender.timings)} "
            f"| {median * 1000:.2f} | {percentile(contender.timings, 0.9) * 1000:.2f} | {ratio} |"
        )
    return lines


def silent_table(rows: list[SilentRuns]) -> list[str]:
    lines = [
        "| client | runs | first frame | next connects | silent proxy connections per run |",
        "| --- | ---: | --- | --- | ---: |",
    ]
    for row in rows:
        if row.firsts:
            first = _spread(row.firsts, "s", 3)
        else:
            seconds = [failed for failed, _ in row.failures]
            first = f"never: fails after {_spread(seconds, 's', 2)} ({row.failures[0][1]})"
        following = _spread(row.nexts, "ms", 2, scale=1000) if row.nexts else "-"
        per_run = row.silent_accepts / row.runs
        lines.append(f"| {row.name} | {row.runs} | {first} | {following} | {per_run:g} |")
    return lines


def _spread(values: list[float], unit: str, digits: int, *, scale: float = 1.0) -> str:
    """The median, and the range when there is more than one value."""
    low, mid, high = (scale * v for v in (min(values), statistics.median(values), max(values)))
    if len(values) == 1:
        return f"{mid:.{digits}f} {unit}"
    return f"{mid:.{digits}f} {unit} ({low:.{digits}f} to {high:.{digits}f} {unit})"


def route_check(contenders: list[Contender], dc: RemoteDC) -> str:
    """Whether each proxied route's last hop logged as many connects to the DC as were made."""
    made: dict[int, tuple[Any, int]] = {}
    for contender in contenders:
        if contender.last_hop is not None:
            hop, count = made.get(id(contender.last_hop), (contender.last_hop, 0))
            made[id(contender.last_hop)] = (hop, count + contender.connects)
    said = []
    for hop, count in made.values():
        logged = 0
        deadline = time.monotonic() + FRAME_WAIT  # the logs may lag
        while time.monotonic() < deadline:
            logged = sum(1 for _, port in hop.destinations() if port == dc.port)
            if logged >= count:
                break
            time.sleep(0.05)
        said.append(f"{hop.name} logged {logged} connects to the DC for {count} made through it")
    return "; ".join(said)


# --- the run ---------------------------------------------------------------------------------


@contextlib.contextmanager
def proxies(work: Path) -> Iterator[tuple[Any, Any, Any]]:
    """Dante, microsocks and tinyproxy, as in ``benchmarks/run.py``."""
    with contextlib.ExitStack() as stack:
        dante = stack.enter_context(daemons.danted(work / "dante"))
        micro = stack.enter_context(daemons.microsocks(work / "micro", "bench", "b3nch-pass"))
        tiny = stack.enter_context(daemons.tinyproxy(work / "tiny", "bench", "b3nch-pass"))
        yield dante, micro, tiny


async def main_async(args: argparse.Namespace, background: BackgroundLoop, work: Path) -> str:
    dc = RemoteDC()
    try:
        with proxies(work) as (dante, micro, tiny):
            dante_url = dante.url("socks5")
            chain = [dante_url, micro.url("socks5"), tiny.url("http")]
            via_dante = "Dante (SOCKS5)"
            contenders = [
                telethon_contender("direct", "Telethon's own connection (no proxy)", dc),
                telethon_contender(
                    via_dante,
                    'Telethon `proxy=("socks5", …)` (python-socks)',
                    dc,
                    proxy=("socks5", LOOPBACK, dante.port),
                ),
                telethon_contender(
                    via_dante,
                    "botsession `telethon_connection(proxy=…)`",
                    dc,
                    connection=telethon_connection(proxy=dante_url),
                ),
                telethon_contender(
                    "3-hop chain",
                    "botsession `telethon_connection(proxy=[…])`",
                    dc,
                    connection=telethon_connection(proxy=chain),
                ),
            ]
            contenders[1].last_hop = contenders[2].last_hop = dante
            contenders[3].last_hop = tiny
            print(f"{args.reps} connects per client …", file=sys.stderr, flush=True)
            await measure_streams(contenders, dc, args.reps)
            checked = route_check(contenders, dc)
            print("the silent primary …", file=sys.stderr, flush=True)
            silent = await measure_silent(args, dc, background, dante_url)
    finally:
        dc.stop()
    own_chain = Contender("3-hop chain", "Telethon `proxy=`", _never)
    shown = [*contenders[:4], own_chain]
    today = datetime.date.today().isoformat()
    return "\n".join(
        [
            f"{_machine()} {today}.",
            "",
            "Time from the start of `client.connect()` until the stand-in DC holds the whole "
            "first frame, a new Telethon client and stream each time "
            f"(Telethon {_telethon_version()}, TcpFull):",
            "",
            *stream_table(shown),
            "",
            f"Routes: {checked}.",
            "",
        ]
        + (
            [
                "",
                "A silent primary (accepts, never answers) with Dante as the fallback: time to "
                "the stand-in's first frame, median (min to max) over the runs; for Telethon's "
                "own `proxy=`, which has no fallback, the time until `connect()` failed:",
                "",
                *silent_table(silent),
            ]
            if silent
            else []
        )
    )


async def _never() -> BaseException | None:
    raise AssertionError("Telethon's own proxy= cannot express a chain")


def _telethon_version() -> str:
    import telethon

    return str(telethon.__version__)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=_positive, default=1000, help="timed connects per client")
    parser.add_argument("--silent-runs", type=_count, default=5, help="botsession, defaults")
    parser.add_argument(
        "--no-hedge-runs", type=_count, default=2, help="without hedging, 10 s each"
    )
    parser.add_argument("--next", type=_count, default=5, help="connects after each run's first")
    parser.add_argument(
        "--own-default-runs", type=_count, default=1, help="Telethon's own, defaults: 66 s each"
    )
    parser.add_argument("--own-small-runs", type=_count, default=3, help="Telethon's own, small")
    return parser.parse_args(argv)


def _count(text: str) -> int:
    number = int(text)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def _positive(text: str) -> int:
    number = _count(text)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def main(argv: list[str] | None = None) -> int:
    if (sys.argv[1:] if argv is None else argv) == [SERVE_DC]:
        return serve_dc()
    args = parse(argv)
    # Telethon warns of each failed attempt; the table says how they ended.
    logging.getLogger("telethon").setLevel(logging.ERROR)
    background = BackgroundLoop()
    try:
        with tempfile.TemporaryDirectory(prefix="botsession-mtproto-") as work:
            print(asyncio.run(main_async(args, background, Path(work))))
    finally:
        background.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
