"""MTProto connect times: botsession's Telethon and kurigram connections against their own
``proxy=`` (#20).

    .venv/bin/python benchmarks/mtproto.py               # about 3½ minutes
    .venv/bin/python benchmarks/mtproto.py --reps 100 --silent-runs 2 --own-default-runs 0
    .venv/bin/python benchmarks/mtproto.py --frameworks telethon

It starts Debian's ``danted``, ``microsocks`` and ``tinyproxy`` on loopback and stops them at
the end. Each framework is measured in a process of its own (Telethon replaces python-socks'
error classes, which kurigram uses too), which starts a stand-in data center in yet another
process, so that it does not share the client's GIL (``tests.mtproto_dc.MTProtoDC``: it records
when each connection's first MTProto frame is complete, then hangs up; ``time.monotonic()`` is
the same clock in every process). A real client (a Telethon ``TelegramClient`` with a
``MemorySession``, a kurigram ``Client`` with ``tests.kurigram_support.LoopbackStorage``; both
with their defaults, their own framing: TcpFull and TCPAbridged) is timed from the start of
``client.connect()`` until the stand-in holds the whole first frame (an unencrypted
``req_pq_multi``), a new client and a new stream each time. The stand-in never answers, so
kurigram's key exchange is told to try once (``Auth.MAX_RETRIES = 0``, as in its tests):
otherwise it would try five more times, a second apart, after each frame.

Two tables:

* **Time to an open stream**, ``--reps`` connects per client, interleaved in palindromic rounds
  (A B C C B A, so that drift of the machine cancels out) after one untimed connect each:
  direct (the framework's own connection, no proxy: the floor), through Dante (SOCKS5) with the
  framework's own ``proxy=`` (python-socks for both) and with botsession's connection, and
  through the 3-hop chain of ``benchmarks/run.py`` (Dante, then microsocks and tinyproxy, both
  with a password), which only botsession can express. Median and p90 in ms, and botsession's
  median over the framework's own on the same route. The proxies' logs are read afterwards to
  check that each connect went through its route.
* **A silent primary**: the primary proxy accepts connections and never answers (a server in
  the framework's process), Dante is the fallback. botsession's first frame arrives after the
  hedge delay (``fallback_hedge_after``, 2 s by default; ``--silent-runs`` runs, each with a
  class, and so a router, of its own, then ``--next`` connects with that class), or after
  ``connect_timeout`` (10 s) without hedging (``--no-hedge-runs``). The frameworks' own
  ``proxy=`` has no fallback: it fails, with their defaults (``--own-default-runs``, alongside
  botsession's runs: Telethon tries 6 times, 10 s each and 1 s apart; kurigram 3 times, 10 s
  each and 1 s apart) and with small settings (``--own-small-runs``): Telethon's
  ``timeout=2, connection_retries=0, retry_delay=0``; kurigram has no such settings, so its
  class attributes ``TCP.TIMEOUT = 2`` and ``Connection.MAX_CONNECTION_ATTEMPTS = 1`` (the 1 s
  pause after a failed attempt is fixed). The last column counts the connections the silent
  proxy accepted, per run.

Only 127.0.0.0/8 is used. Run it with the development venv (Telethon, kurigram, python-socks).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: benchmarks/ is on the path, the root is not
    sys.path.insert(0, str(ROOT))

from benchmarks.run import _machine  # noqa: E402
from botsession.config_schema import DEFAULT_HEDGE_AFTER  # noqa: E402
from tests.mtproto_dc import MTProtoDC  # noqa: E402
from tests.servers import BackgroundLoop, SilentServer  # noqa: E402
from tests.support import LOOPBACK  # noqa: E402

FRAMEWORKS = ("telethon", "kurigram")
SERVE_DC = "--serve-dc"
"""Run as the stand-in DC's process: print the port, then a line for each connection's first
frame (``frame <when complete> <1 if req_pq_multi>``) or failure (``error <what>``), until stdin
is closed."""
WORKER = "--worker"
"""Run as a framework's process: the plan on stdin (JSON), the measurements on stdout (JSON)."""
FRAME_WAIT = 5.0
"""The longest the stand-in's record of a frame may lag behind the end of ``connect()`` (s)."""
VIA_DANTE = "Dante (SOCKS5)"
CHAIN = "3-hop chain"
NO_CHAIN = "cannot express (one proxy only)"


# --- the stand-in DC, in a process of its own ------------------------------------------------


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
    """The stand-in DC's process, as the client's process sees it: its port and the frames it
    got, each as (when it was complete, whether it was a req_pq_multi)."""

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


# --- the frameworks --------------------------------------------------------------------------


class Telethon:
    name = "Telethon"
    own_proxy = 'Telethon `proxy=("socks5", …)`'
    defaults = "`timeout=10, connection_retries=5, retry_delay=1` (its defaults)"
    small = "`timeout=2, connection_retries=0, retry_delay=0`"
    SMALL: ClassVar[dict[str, int]] = {"timeout": 2, "connection_retries": 0, "retry_delay": 0}

    def __init__(self) -> None:
        import telethon
        from telethon import TelegramClient
        from telethon.sessions import MemorySession

        from botsession.telethon import telethon_connection

        self.version = f"Telethon {telethon.__version__}, TcpFull"
        self._client, self._session, self.connection = (
            TelegramClient,
            MemorySession,
            telethon_connection,
        )
        self._small = False
        # It warns of each failed attempt; the table says how they ended.
        logging.getLogger("telethon").setLevel(logging.CRITICAL)

    def client(self, dc: int, *, proxy: int | None = None, connection: Any = None) -> Any:
        """A client whose DC 2 is the stand-in on port ``dc``: through the SOCKS5 proxy on port
        ``proxy`` (Telethon's own), or with ``connection`` (botsession's)."""
        options: dict[str, Any] = dict(self.SMALL) if self._small else {}
        if proxy is not None:
            options["proxy"] = ("socks5", LOOPBACK, proxy)
        if connection is not None:
            options["connection"] = connection
        client = self._client(self._session(), 1, "x", **options)
        client.session.set_dc(2, LOOPBACK, dc)
        return client

    @staticmethod
    async def connect(client: Any) -> None:
        await client.connect()

    @staticmethod
    async def close(client: Any) -> None:
        await client.disconnect()

    @contextlib.contextmanager
    def small_settings(self) -> Iterator[None]:
        self._small = True
        try:
            yield
        finally:
            self._small = False


class Kurigram:
    name = "kurigram"
    own_proxy = 'kurigram `proxy={"scheme": "socks5", …}`'
    defaults = "its defaults (`TCP.TIMEOUT` 10 s, `Connection.MAX_CONNECTION_ATTEMPTS` 3)"
    small = "`TCP.TIMEOUT = 2`, `Connection.MAX_CONNECTION_ATTEMPTS = 1` (class attributes)"

    def __init__(self) -> None:
        import pyrogram
        from pyrogram.connection import Connection
        from pyrogram.connection.transport import TCP
        from pyrogram.session import Auth

        from botsession.kurigram import kurigram_connection
        from tests.kurigram_support import client_for

        self.version = f"kurigram {pyrogram.__version__}, TCPAbridged"
        self._own, self._tcp, self._client_for = Connection, TCP, client_for
        self.connection = kurigram_connection
        # The stand-in never answers the key exchange: one try, not six a second apart. (A
        # failed connect is a ConnectionError, which it raises at once, tries or not.)
        Auth.MAX_RETRIES = 0
        logging.getLogger("pyrogram").setLevel(logging.CRITICAL)

    def client(self, dc: int, *, proxy: int | None = None, connection: Any = None) -> Any:
        options: dict[str, Any] = {}
        if proxy is not None:
            options["proxy"] = {"scheme": "socks5", "hostname": LOOPBACK, "port": proxy}
        return self._client_for(connection or self._own, (LOOPBACK, dc), **options)

    @staticmethod
    async def connect(client: Any) -> None:
        await client.connect()

    @staticmethod
    async def close(client: Any) -> None:
        if client.is_connected:
            await client.disconnect()
        else:
            await client.storage.close()

    @contextlib.contextmanager
    def small_settings(self) -> Iterator[None]:
        timeout, attempts = self._tcp.TIMEOUT, self._own.MAX_CONNECTION_ATTEMPTS
        self._tcp.TIMEOUT, self._own.MAX_CONNECTION_ATTEMPTS = 2, 1
        try:
            yield
        finally:
            self._tcp.TIMEOUT, self._own.MAX_CONNECTION_ATTEMPTS = timeout, attempts


Framework = Telethon | Kurigram


# --- measurements (in the framework's process) -----------------------------------------------


@dataclass
class Contender:
    """A client on a route: ``make`` builds a new client (untimed)."""

    route: str
    name: str
    make: Callable[[], Any]
    last_hop: str | None = None
    """The daemon whose log shows this route's connects to the DC (None: direct)."""
    timings: list[float] = field(default_factory=list)
    """Seconds from the start of ``connect()`` to the first frame, one per timed connect."""
    connects: int = 0
    """Every connect made, the untimed ones included."""

    def result(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key != "make"}


async def timed_connect(framework: Framework, contender: Contender, dc: RemoteDC) -> float:
    """Seconds from the start of a new client's ``connect()`` to its first frame at the
    stand-in (which then hangs up: the connect fails, untimed)."""
    client = contender.make()
    before = len(dc.frames)
    started = time.monotonic()
    error: BaseException | None = None
    try:
        await framework.connect(client)
    except Exception as failed:  # the stand-in hung up where the client waited for an answer
        error = failed
    finally:
        await framework.close(client)
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


async def measure_streams(
    framework: Framework, contenders: list[Contender], dc: RemoteDC, reps: int
) -> None:
    """One untimed connect each, then ``reps`` timed ones each in palindromic rounds."""
    for contender in contenders:
        await timed_connect(framework, contender, dc)
    order = contenders + contenders[::-1]
    for _ in range((reps + 1) // 2):
        for contender in order:
            if len(contender.timings) < reps:
                contender.timings.append(await timed_connect(framework, contender, dc))


@dataclass
class SilentRuns:
    """One row of the silent-primary table."""

    name: str
    firsts: list[float] = field(default_factory=list)
    """Seconds to the first frame, one per run."""
    failures: list[tuple[float, str]] = field(default_factory=list)
    """Seconds until ``connect()`` failed, and what it raised, one per run that failed."""
    nexts: list[float] = field(default_factory=list)
    """Seconds to the first frame of the connects after a run's first, with the same class."""
    runs: int = 0
    silent_accepts: int = 0

    @property
    def through_fallback(self) -> int:
        """Connects that reached the stand-in (through the fallback, Dante)."""
        return len(self.firsts) + len(self.nexts)


async def botsession_silent(
    framework: Framework,
    row: SilentRuns,
    dc: RemoteDC,
    silent: SilentServer,
    plan: dict[str, Any],
    **more: Any,
) -> None:
    """One run: a new class (a router that has not met the silent primary yet), its first
    connect and ``plan["next"]`` more."""
    primary = f"socks5://{LOOPBACK}:{silent.port}"
    cls = framework.connection(proxy=primary, fallback=[plan["dante"]], **more)
    contender = Contender("silent", row.name, lambda: framework.client(dc.port, connection=cls))
    row.firsts.append(await timed_connect(framework, contender, dc))
    for _ in range(plan["next"]):
        row.nexts.append(await timed_connect(framework, contender, dc))
    row.runs += 1


async def own_silent(
    framework: Framework, row: SilentRuns, dc: RemoteDC, silent: SilentServer
) -> None:
    """One run of the framework's own ``proxy=`` with the silent proxy: the time until its
    ``connect()`` fails."""
    client = framework.client(dc.port, proxy=silent.port)
    started = time.monotonic()
    try:
        await framework.connect(client)
    except Exception as error:  # whatever it fails with is the result
        row.failures.append((time.monotonic() - started, f"{type(error).__name__}: {error}"))
    else:
        raise RuntimeError(f"{row.name}: connected through a silent proxy")
    finally:
        await framework.close(client)
    row.runs += 1


async def measure_silent(
    framework: Framework, plan: dict[str, Any], dc: RemoteDC, background: BackgroundLoop
) -> list[SilentRuns]:
    name = framework.name
    hedge = SilentRuns(
        f"botsession with {name}, defaults (`fallback_hedge_after` {DEFAULT_HEDGE_AFTER:g} s)"
    )
    no_hedge = SilentRuns(
        f"botsession with {name}, `fallback_hedge_after: null` (`connect_timeout` 10 s)"
    )
    own = SilentRuns(f"{framework.own_proxy.replace('…', '<silent>')}, {framework.defaults}")
    small = SilentRuns(f"{framework.own_proxy.replace('…', '<silent>')}, {framework.small}")
    rows = (hedge, no_hedge, own, small)
    servers = [SilentServer(background).start() for _ in rows]
    silent = dict(zip((id(row) for row in rows), servers, strict=True))
    try:
        # The framework's own defaults wait on an idle socket for half a minute or more:
        # alongside botsession's runs.
        waiting = asyncio.ensure_future(
            _repeat(
                plan["own_default_runs"],
                lambda: own_silent(framework, own, dc, silent[id(own)]),
            )
        )
        for _ in range(plan["silent_runs"]):
            await botsession_silent(framework, hedge, dc, silent[id(hedge)], plan)
        for _ in range(plan["no_hedge_runs"]):
            await botsession_silent(
                framework, no_hedge, dc, silent[id(no_hedge)], plan, fallback_hedge_after=None
            )
        await waiting
        with framework.small_settings():  # kurigram's are its classes': not alongside
            for _ in range(plan["own_small_runs"]):
                await own_silent(framework, small, dc, silent[id(small)])
    finally:
        for row, server in zip(rows, servers, strict=True):
            row.silent_accepts = server.accepted
            server.stop()
    return [row for row in rows if row.runs]


async def _repeat(times: int, run: Callable[[], Awaitable[None]]) -> None:
    for _ in range(times):
        await run()


async def measure(framework: Framework, plan: dict[str, Any]) -> dict[str, Any]:
    """Every measurement of one framework, as JSON for the parent."""
    background = BackgroundLoop()
    dc = RemoteDC()
    try:
        name = framework.name
        routed = f"botsession `{framework.connection.__name__}"
        dante = framework.connection(proxy=plan["dante"])
        chain = framework.connection(proxy=plan["chain"])
        contenders = [
            Contender("direct", f"{name}'s own connection", lambda: framework.client(dc.port)),
            Contender(
                VIA_DANTE,
                f"{framework.own_proxy} (python-socks)",
                lambda: framework.client(dc.port, proxy=plan["dante_port"]),
                last_hop="danted",
            ),
            Contender(
                VIA_DANTE,
                f"{routed}(proxy=…)`",
                lambda: framework.client(dc.port, connection=dante),
                last_hop="danted",
            ),
            Contender(
                CHAIN,
                f"{routed}(proxy=[…])`",
                lambda: framework.client(dc.port, connection=chain),
                last_hop="tinyproxy",
            ),
        ]
        print(f"{name}: {plan['reps']} connects per client …", file=sys.stderr, flush=True)
        await measure_streams(framework, contenders, dc, plan["reps"])
        print(f"{name}: the silent primary …", file=sys.stderr, flush=True)
        silent = await measure_silent(framework, plan, dc, background)
    finally:
        dc.stop()
        background.close()
    return {
        "framework": name,
        "version": framework.version,
        "own_proxy": framework.own_proxy,
        "dc_port": dc.port,
        "contenders": [contender.result() for contender in contenders],
        "silent": [asdict(row) for row in silent],
        "through_fallback": sum(row.through_fallback for row in silent),
    }


def worker() -> int:
    plan = json.loads(sys.stdin.readline())  # not on the command line: it holds passwords
    framework: Framework = Telethon() if plan["framework"] == "telethon" else Kurigram()
    print(json.dumps(asyncio.run(measure(framework, plan))), flush=True)
    return 0


# --- the report (in the parent) --------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (inclusive method; the value itself for one)."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(fraction * 100) - 1]


def stream_rows(result: dict[str, Any]) -> list[str]:
    contenders = result["contenders"]
    own = statistics.median(contenders[1]["timings"])  # the framework's own proxy=, on Dante
    lines = []
    for contender in contenders:
        timings = contender["timings"]
        median = statistics.median(timings)
        ratio = f"{median / own:.2f}" if contender["route"] == VIA_DANTE else "-"
        lines.append(
            f"| {contender['route']} | {contender['name']} | {len(timings)} "
            f"| {median * 1000:.2f} | {percentile(timings, 0.9) * 1000:.2f} | {ratio} |"
        )
        if contender["route"] == CHAIN:
            lines.append(f"| {CHAIN} | {result['own_proxy']} | {NO_CHAIN} | | | |")
    return lines


def silent_rows(result: dict[str, Any]) -> list[str]:
    lines = []
    for row in result["silent"]:
        if row["firsts"]:
            first = _spread(row["firsts"], "s", 3)
        else:
            seconds = [failed for failed, _ in row["failures"]]
            error = row["failures"][0][1].removesuffix(": ")
            first = f"never: fails after {_spread(seconds, 's', 2)} ({error})"
        following = _spread(row["nexts"], "ms", 2, scale=1000) if row["nexts"] else "-"
        per_run = row["silent_accepts"] / row["runs"]
        lines.append(f"| {row['name']} | {row['runs']} | {first} | {following} | {per_run:g} |")
    return lines


def _spread(values: list[float], unit: str, digits: int, *, scale: float = 1.0) -> str:
    """The median, and the range when there is more than one value."""
    low, mid, high = (scale * v for v in (min(values), statistics.median(values), max(values)))
    if len(values) == 1:
        return f"{mid:.{digits}f} {unit}"
    return f"{mid:.{digits}f} {unit} ({low:.{digits}f} to {high:.{digits}f} {unit})"


def route_check(result: dict[str, Any], daemons_by_name: dict[str, Any]) -> str:
    """Whether each proxied route's last hop logged as many connects to the DC as were made
    through it."""
    made = {"danted": result["through_fallback"]}  # the silent primary's fallback
    for contender in result["contenders"]:
        if contender["last_hop"] is not None:
            hop = contender["last_hop"]
            made[hop] = made.get(hop, 0) + contender["connects"]
    said = []
    for hop, count in made.items():
        logged = 0
        deadline = time.monotonic() + FRAME_WAIT  # the logs may lag
        while time.monotonic() < deadline:
            destinations = daemons_by_name[hop].destinations()
            logged = sum(1 for _, port in destinations if port == result["dc_port"])
            if logged >= count:
                break
            time.sleep(0.05)
        said.append(f"{hop} logged {logged} connects to the DC for {count} made through it")
    return f"{result['framework']}: " + "; ".join(said)


def render(results: list[dict[str, Any]], checks: list[str]) -> str:
    versions = ", ".join(result["version"] for result in results)
    lines = [
        f"{_machine()} {datetime.date.today().isoformat()}.",
        "",
        "Time from the start of `client.connect()` until the stand-in DC holds the whole first "
        f"frame, a new client and stream each time ({versions}):",
        "",
        "| route | client | connects | median ms | p90 ms | x its own proxy= |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        lines += stream_rows(result)
    lines += ["", "Routes: " + "; ".join(checks) + "."]
    if any(result["silent"] for result in results):
        lines += [
            "",
            "A silent primary (accepts, never answers) with Dante as the fallback: time to the "
            "stand-in's first frame, median (min to max) over the runs; for the frameworks' own "
            "`proxy=`, which has no fallback, the time until `connect()` failed:",
            "",
            "| client | runs | first frame | next connects | silent proxy connections per run |",
            "| --- | ---: | --- | --- | ---: |",
        ]
        for result in results:
            lines += silent_rows(result)
    return "\n".join(lines)


# --- the run ---------------------------------------------------------------------------------


@contextlib.contextmanager
def proxies(work: Path) -> Iterator[dict[str, Any]]:
    """Dante, microsocks and tinyproxy, as in ``benchmarks/run.py``, by name."""
    from tests.e2e import daemons

    with contextlib.ExitStack() as stack:
        dante = stack.enter_context(daemons.danted(work / "dante"))
        micro = stack.enter_context(daemons.microsocks(work / "micro", "bench", "b3nch-pass"))
        tiny = stack.enter_context(daemons.tinyproxy(work / "tiny", "bench", "b3nch-pass"))
        yield {proxy.name: proxy for proxy in (dante, micro, tiny)}


def run_worker(plan: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__)), WORKER]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as process:
        out, _ = process.communicate(json.dumps(plan) + "\n")
    if process.returncode or not out.strip():
        raise RuntimeError(f"the {plan['framework']} process failed (see stderr)")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == [SERVE_DC]:
        return serve_dc()
    if argv == [WORKER]:
        return worker()
    args = parse(argv)
    results, checks = [], []
    with (
        tempfile.TemporaryDirectory(prefix="botsession-mtproto-") as work,
        proxies(Path(work)) as running,
    ):
        dante, micro, tiny = running["danted"], running["microsocks"], running["tinyproxy"]
        for framework in args.frameworks:
            plan = {
                "framework": framework,
                "dante": dante.url("socks5"),
                "dante_port": dante.port,
                "chain": [dante.url("socks5"), micro.url("socks5"), tiny.url("http")],
                **{key: getattr(args, key) for key in PLANNED},
            }
            results.append(run_worker(plan))
            checks.append(route_check(results[-1], running))
    print(render(results, checks))
    return 0


PLANNED = ("reps", "silent_runs", "no_hedge_runs", "next", "own_default_runs", "own_small_runs")
"""The options a framework's process is given."""


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=_positive, default=1000, help="timed connects per client")
    parser.add_argument("--silent-runs", type=_count, default=5, help="botsession, defaults")
    parser.add_argument(
        "--no-hedge-runs", type=_count, default=2, help="without hedging, 10 s each"
    )
    parser.add_argument("--next", type=_count, default=5, help="connects after each run's first")
    parser.add_argument(
        "--own-default-runs",
        type=_count,
        default=1,
        help="the frameworks' own proxy=, defaults (Telethon 66 s, kurigram 33 s each)",
    )
    parser.add_argument(
        "--own-small-runs", type=_count, default=3, help="the frameworks' own, small settings"
    )
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    args = parser.parse_args(argv)
    args.frameworks = [name for name in args.frameworks.split(",") if name]
    if not args.frameworks or any(name not in FRAMEWORKS for name in args.frameworks):
        parser.error(f"--frameworks: choose from {', '.join(FRAMEWORKS)}")
    return args


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


if __name__ == "__main__":
    sys.exit(main())
