"""Benchmark botsession against raw aiohttp-socks, aiogram, python-telegram-bot and httpx.

    python3 benchmarks/run.py            # full run (about half an hour); prints Markdown tables
    python3 benchmarks/run.py --rounds 8 # the same with fewer rounds
    python3 benchmarks/run.py --smoke    # small counts, minutes: the benchmark works, and no
                                         # floor is missed grossly
    python3 benchmarks/run.py --only silent-primary  # only the silent-primary table (2-3 min)

On first use it builds ``.venv-bench`` (botsession with its ``ptb`` and ``httpx`` extras, plus
``benchmarks/requirements.txt``, which holds python-telegram-bot, httpx[socks] and trustme) and
runs itself there; it installs again when those requirements change. It starts its own stand-in
Bot API servers (separate processes, one of them serving HTTPS with a certificate from a CA made
for the run) and Debian's danted, microsocks, tinyproxy and stunnel4 on loopback, and stops
them. Each client runs in a worker process of its own, as it would in a bot
(``benchmarks/worker.py``). Rounds are interleaved and medians reported; every rate is also
given as a ratio to the raw aiohttp-socks connector measured in the same run, because absolute
numbers drift on a shared machine. A last table times the first successful request when the
primary proxy accepts connections and never answers (Dante the only fallback). The floors are
checked at the end: the exit code is 1 when one is missed by a factor of 2 in every round (a
ratio below half its floor, a count or delay above twice its bound: a regression no busy
machine explains), and with ``--strict`` when any is missed; else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.clients import Client, Route

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".venv-bench"
BENCH_EXTRAS = "aiogram,ptb,httpx"
"""botsession's extras the benchmark venv needs (its aiogram, python-telegram-bot and httpx
adapters)."""
SAMPLES = ROOT / "sample_configs"


@dataclass(frozen=True)
class Plan:
    rounds: int
    sequential: int
    concurrent: int
    width: int
    tunnel_requests: int
    loads: int
    cli_runs: int
    silent_runs: int = 5
    """Runs of each botsession client in the silent-primary table (aiogram's own runs once)."""
    silent_next: int = 20
    """Requests timed after the first success, in each of those runs."""
    silent_cap: float | None = None
    """Seconds after which aiogram's own session (which waits 60 s for a silent proxy) is given
    up on; None: wait for it."""


FULL = Plan(
    rounds=25, sequential=400, concurrent=800, width=50, tunnel_requests=1000, loads=200, cli_runs=7
)
SMOKE = Plan(  # enough slices for the gross check: 40 sequential and 16 concurrent per client
    rounds=1,
    sequential=200,
    concurrent=400,
    width=50,
    tunnel_requests=20,
    loads=3,
    cli_runs=3,
    silent_runs=1,
    silent_next=3,
    silent_cap=5.0,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--smoke", action="store_true", help="small counts: it runs, no floor missed grossly"
    )
    parser.add_argument("--here", action="store_true", help="use this interpreter, not .venv-bench")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a floor is missed")
    parser.add_argument("--seed", type=int, default=1, help="seed for the interleaving order")
    parser.add_argument(
        "--rounds", type=_positive, help=f"interleaved rounds (default {FULL.rounds}; smoke 1)"
    )
    parser.add_argument(
        "--only",
        choices=["silent-primary"],
        help="measure only this table (silent-primary: time to first success, 2-3 minutes)",
    )
    args = parser.parse_args(argv)
    if not args.here:
        return _rerun_in_benchmark_venv(argv if argv is not None else sys.argv[1:])
    sys.path.insert(0, str(ROOT))
    plan = SMOKE if args.smoke else FULL
    if args.rounds:
        plan = dataclasses.replace(plan, rounds=args.rounds)
    report = measure(plan, seed=args.seed, only=args.only)
    print(report.render())
    return exit_code(report, strict=args.strict)


def measure(plan: Plan, *, seed: int = 1, only: str | None = None) -> Report:
    """Start the servers and workers, take every measurement of ``plan`` (or only the
    silent-primary table) and stop them again."""
    report = Report(plan)
    with _servers() as servers:
        if only is None:
            with _workers(servers.base, servers.routes) as workers:
                order = random.Random(seed)  # noqa: S311 - shuffles order, not secrets
                _measure_rates(workers, servers.routes, plan, order, report)
                _measure_tunnels(workers, servers, plan, report)
        _measure_silent_primary(plan, servers.dante, report)
    if only is None:
        _measure_config_loads(plan, report)
        _measure_cli(plan, report)
    return report


def exit_code(report: Report, *, strict: bool) -> int:
    """1 when a floor is missed grossly (and, with ``strict``, when any is missed), else 0;
    each gross miss is told on stderr."""
    gross = report.gross_misses()
    for floor in gross:
        print(
            f"gross regression: {floor.what}: {floor.measured:.2f} (best {floor.best:.2f}), "
            f"floor {floor.bound}: missed by a factor of {floor.gross:g} or more",
            file=sys.stderr,
        )
    return 1 if gross or (strict and report.missed_floors()) else 0


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _rerun_in_benchmark_venv(argv: list[str]) -> int:
    python = BENCH_VENV / "bin" / "python"
    requirements = ROOT / "benchmarks" / "requirements.txt"
    # What the venv was built from: it is installed again when any of it changes.
    wanted = hashlib.sha256(
        BENCH_EXTRAS.encode() + requirements.read_bytes() + (ROOT / "pyproject.toml").read_bytes()
    ).hexdigest()
    stamp = BENCH_VENV / "botsession-benchmark.installed"
    if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
        if not python.exists():
            print(f"building {BENCH_VENV.name} (first run only) …", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        else:
            print(f"updating {BENCH_VENV.name} …", file=sys.stderr, flush=True)
        install = [
            *(str(python), "-m", "pip", "install", "-q"),
            *("-e", f"{ROOT}[{BENCH_EXTRAS}]", "-r", str(requirements)),
        ]
        subprocess.run(install, check=True)
        stamp.write_text(wanted)
    return subprocess.run(
        [str(python), str(Path(__file__)), *argv, "--here"], check=False
    ).returncode


# --- the servers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Servers:
    """What the benchmark started: the stand-in's base URL, the routes to it, Dante (the
    silent-primary table's fallback) and, by route name, the proxy whose log counts the tunnels
    opened on that route."""

    base: str
    routes: list[Route]
    dante: Any
    counted: dict[str, Any]


HTTPS_ROUTE = "HTTPS proxy, https Bot API"
"""stunnel in front of tinyproxy (with a password), to a stand-in that serves HTTPS: TLS
inside TLS, as with the real Bot API."""


@contextlib.contextmanager
def _servers() -> Iterator[Servers]:
    import trustme

    from benchmarks.clients import Route
    from tests.e2e import daemons, tls_daemons

    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="botsession-bench-")))
        base = stack.enter_context(_standin())
        ca = trustme.CA()
        ca_file = work / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        certificate = tls_daemons.issue(ca, work / "certificates", "loopback")
        https_base = stack.enter_context(_standin(tls=certificate))
        dante = stack.enter_context(daemons.danted(work / "dante"))
        micro = stack.enter_context(daemons.microsocks(work / "micro", "bench", "b3nch-pass"))
        tiny = stack.enter_context(daemons.tinyproxy(work / "tiny", "bench", "b3nch-pass"))
        behind = stack.enter_context(daemons.tinyproxy(work / "tiny-tls", "bench", "b3nch-pass"))
        https = stack.enter_context(tls_daemons.stunnel(work / "stunnel", behind, certificate))
        chain = Route("3-hop chain", (dante.url("socks5"), micro.url("socks5"), tiny.url("http")))
        routes = [
            Route("direct", ()),
            Route("Dante (SOCKS5)", (dante.url("socks5"),)),
            chain,
            Route(HTTPS_ROUTE, (https.url(),), ca_file=str(ca_file), base=https_base),
        ]
        yield Servers(base, routes, dante, {chain.name: dante, HTTPS_ROUTE: https})


@contextlib.contextmanager
def _standin(*, close: bool = False, tls: Any = None) -> Iterator[str]:
    """The stand-in Bot API in its own process; ``close``: a new connection for each request;
    ``tls``: a certificate (``tls_daemons.Certificate``) to serve HTTPS with."""
    command = [sys.executable, "-m", "benchmarks.standin", *(["--close"] if close else [])]
    if tls is not None:
        command += ["--tls", str(tls.cert), str(tls.key)]
    with subprocess.Popen(
        command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as standin:
        assert standin.stdout is not None
        assert standin.stdin is not None
        scheme = "http" if tls is None else "https"
        try:
            yield f"{scheme}://127.0.0.1:{standin.stdout.readline().strip()}"
        finally:
            standin.stdin.close()  # the server exits when its stdin closes


@contextlib.contextmanager
def _silent_primary() -> Iterator[str]:
    """A SOCKS5 "proxy" on loopback that accepts connections and never answers (in a thread)."""
    import asyncio

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                pass
        finally:
            writer.close()

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(swallow, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, name="silent-primary", daemon=True)
    thread.start()
    try:
        yield f"socks5://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        server.close()
        loop.run_until_complete(_cancel_the_rest())
        loop.close()


async def _cancel_the_rest() -> None:
    """Cancel every other task of the running loop and wait for them."""
    import asyncio

    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- measurements ---------------------------------------------------------------------------


GROSS = 2.0
"""A count or a timer-bound delay (tunnels, first success with a silent primary) this many
times over its bound is a gross regression: the run fails, with or without ``--strict``. Such
figures do not move with the machine's load."""
GROSS_TIMING = 4.0
"""The same for ratios of timings (rates of two clients, ``botsession check`` against ``import
aiogram``), taken at their best. On two cores busy with other work and two CPU-bound
processes, the best-slice ratio of two clients of equal speed came out as low as 0.41 of its
floor in smoke runs; 10 ms more per request took the sequential ones to 0.03-0.07."""


@dataclass(frozen=True)
class Floor:
    """A required figure: at least (or at most) ``required``."""

    what: str
    measured: float
    required: float
    rounds: list[float] = field(default_factory=list)
    at_most: bool = False
    best_slices: float | None = None
    """Our best slice's rate over theirs (for ratios of rates): what the gross check takes."""
    gated: bool = True
    """Whether missing it by ``gross`` fails the run. Not for absolute speeds, which a busy
    machine slows down by any factor; ratios of clients measured in the same round, counts and
    timer-bound delays hold on any machine."""
    gross: float = GROSS
    """The factor by which missing it is a gross regression (``GROSS_TIMING`` for ratios of
    timings)."""

    @property
    def met(self) -> bool:
        if self.at_most:
            return self.measured <= self.required
        return self.measured >= self.required

    @property
    def best(self) -> float:
        """The figure at its best: the ratio of the best slices, else the best round (the
        measured figure itself when there are no rounds)."""
        if self.best_slices is not None:
            return self.best_slices
        if not self.rounds:
            return self.measured
        return min(self.rounds) if self.at_most else max(self.rounds)

    @property
    def grossly_missed(self) -> bool:
        if not self.gated:
            return False
        if self.at_most:
            return self.best > self.required * self.gross
        return self.best < self.required / self.gross

    @property
    def bound(self) -> str:
        return f"≤ {self.required:g}" if self.at_most else f"≥ {self.required:g}"

    @property
    def verdict(self) -> str:
        if self.grossly_missed:
            return "FAILED"
        return "ok" if self.met else "MISSED"

    def spread(self) -> str:
        if len(self.rounds) < 4:
            return ""
        first, _, third = statistics.quantiles(self.rounds, n=4)
        return f"{first:.2f} to {third:.2f}"


class Report:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rates: dict[tuple[str, str, str], list[float]] = {}
        self.relative: dict[tuple[str, str, str], list[float]] = {}
        self.order: list[tuple[str, str]] = []
        self.best: dict[tuple[str, str, str], float] = {}
        """The fastest slice's rate (calls per second) of all runs, by route, client, mode."""
        self.tunnels: dict[tuple[str, str], int] = {}
        """Tunnels opened for ``plan.tunnel_requests`` sequential requests, by route and client."""
        self.loads: dict[str, float] = {}
        self.cli_ms = 0.0
        self.aiogram_ms = 0.0
        self.bare_ms = 0.0
        """``python -c pass``: what any command costs before it imports anything."""
        self.silent: dict[str, list[dict[str, Any]]] = {}
        """Each silent-primary client's runs (the worker's answers), by its kind."""

    def add(self, route: str, client: str, mode: str, rate: float, relative: float) -> None:
        """One round's ``rate`` and its ratio to the raw connector at the same moment."""
        if (route, client) not in self.order:
            self.order.append((route, client))
        self.rates.setdefault((route, client, mode), []).append(rate)
        self.relative.setdefault((route, client, mode), []).append(relative)

    def add_best(self, route: str, client: str, mode: str, rate: float) -> None:
        """The rate of one run's fastest slice: the best of all runs is kept."""
        key = (route, client, mode)
        self.best[key] = max(rate, self.best.get(key, 0.0))

    def best_ratio(self, route: str, client: str, other: str, mode: str) -> float | None:
        """``client``'s best slice rate over ``other``'s."""
        ours, theirs = self.best.get((route, client, mode)), self.best.get((route, other, mode))
        return ours / theirs if ours and theirs else None

    def median(self, route: str, client: str, mode: str) -> float | None:
        values = self.rates.get((route, client, mode))
        return statistics.median(values) if values else None

    def ratio(self, route: str, client: str, mode: str) -> float | None:
        """Median over rounds of the rate relative to the raw connector in the same round."""
        values = self.relative.get((route, client, mode))
        return statistics.median(values) if values else None

    def per_round(self, route: str, client: str, other: str, mode: str) -> list[float]:
        """``client`` / ``other`` in each round (both taken relative to raw)."""
        ours = self.relative.get((route, client, mode), [])
        theirs = self.relative.get((route, other, mode), [])
        return [a / b for a, b in zip(ours, theirs, strict=False)]

    def floors(self) -> list[Floor]:
        """Every floor of the issue, with what was measured."""
        from benchmarks import clients

        ptb = clients.PythonTelegramBot.name
        # (what, our client, the other one, floor sequential, floor concurrent)
        comparisons = [
            ("botsession / raw connector", clients.BotsessionPlain.name, "raw", 0.98, 0.98),
            (
                "botsession / aiogram's session",
                clients.BotsessionAiogram.name,
                clients.AiogramOwn.name,
                1.0,
                1.0,
            ),
            # Against python-telegram-bot's and httpx's own clients given the same pool as
            # botsession's (clients.pool_size()): set from measurements with that pool.
            ("botsession / python-telegram-bot", clients.BotsessionAiogram.name, ptb, 2.0, 4.0),
            (
                "PTB via botsession / PTB's own HTTPXRequest(proxy=)",
                clients.BotsessionPythonTelegramBot.name,
                ptb,
                2.0,
                5.0,
            ),
            (
                "httpx via botsession / httpx's own SOCKS5",
                clients.BotsessionHttpx.name,
                clients.HttpxOwn.name,
                1.25,
                3.0,
            ),
        ]
        results = []
        for route in ("Dante (SOCKS5)", "3-hop chain"):
            raw = next((c for r, c in self.order if r == route and c.startswith("raw")), "")
            for label, client, other, *floors in comparisons:
                for mode, floor in zip(("sequential", "concurrent"), floors, strict=True):
                    theirs = raw if other == "raw" else other
                    values = self.per_round(route, client, theirs, mode)
                    if values:
                        what = f"{label}, {route}, {mode}"
                        median = statistics.median(values)
                        best = self.best_ratio(route, client, theirs, mode)
                        results.append(
                            Floor(what, median, floor, values, best_slices=best, gross=GROSS_TIMING)
                        )
        for (route, client), tunnels in self.tunnels.items():
            if client.startswith("botsession"):
                what = f"tunnels per {self.plan.tunnel_requests} requests, {route}, {client}"
                results.append(Floor(what, float(tunnels), 2.0, at_most=True))
        for name, ms in self.loads.items():
            what = f"load + validate {name}, ms"
            results.append(Floor(what, ms, 5.0, at_most=True, gated=False))
        if self.aiogram_ms:
            share = self.cli_ms / self.aiogram_ms
            what = "`botsession check` / `import aiogram`"
            results.append(Floor(what, share, 0.10, at_most=True, gross=GROSS_TIMING))
        firsts = [run["first"] for run in self.silent.get("default", []) if "first" in run]
        if self.silent.get("default"):
            # A run that never succeeded counts as infinitely slow.
            firsts += [float("inf")] * (len(self.silent["default"]) - len(firsts))
            what = "first success with a silent primary, botsession defaults, s"
            bound = _hedge_after() + 0.5
            results.append(Floor(what, statistics.median(firsts), bound, firsts, at_most=True))
        return results

    def missed_floors(self) -> bool:
        return not all(floor.met for floor in self.floors())

    def gross_misses(self) -> list[Floor]:
        """The floors missed by their ``gross`` factor or more, even at their best:
        regressions no busy machine explains."""
        return [floor for floor in self.floors() if floor.grossly_missed]

    def render(self) -> str:
        from benchmarks.clients import SLICE

        lines = [
            f"## botsession benchmark — {datetime.date.today().isoformat()}",
            "",
            _machine(),
            "",
        ]
        if self.order:
            lines += self._render_throughput()
        if self.silent:
            lines += self._render_silent_primary()
        lines += [
            "| floor | measured (median) | per-round IQR | best | required | |",
            "| --- | ---: | --- | ---: | ---: | --- |",
        ]
        for floor in self.floors():
            lines.append(
                f"| {floor.what} | {floor.measured:.2f} | {floor.spread()} | {floor.best:.2f} "
                f"| {floor.bound} | {floor.verdict} |"
            )
        lines += [
            "",
            f"best: the figure at its best, which the gross check takes (FAILED: missed by a "
            f"factor of {GROSS_TIMING:g} even there for ratios of timings, {GROSS:g} for counts "
            f"and delays); for rates, the ratio of the clients' fastest slices ({SLICE} "
            "sequential calls, or one concurrent batch) over all their runs.",
        ]
        return "\n".join(lines)

    def _render_throughput(self) -> list[str]:
        width = self.plan.width
        lines = [
            f"getMe round-trips per second, median of {self.plan.rounds} interleaved rounds of "
            f"{self.plan.sequential} sequential and {self.plan.concurrent} requests "
            f"{width} at a time; each client runs in its own process, each run opens its own "
            "tunnels, and each client runs twice per "
            "round in palindromic order (so drift cancels). x raw = median of the per-round "
            "ratios to the raw aiohttp-socks connector on the same route (on the HTTPS proxy "
            "route, which aiohttp-socks cannot take, to aiohttp's own proxy=). "
            "python-telegram-bot's and httpx's own proxy support cannot chain proxies; aiogram's "
            "session (aiohttp-socks) cannot take an HTTPS proxy.",
            "",
            f"| route | client | sequential/s | x raw | {width} concurrent/s | x raw |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for route, client in self.order:
            cells = []
            for mode in ("sequential", "concurrent"):
                value, ratio = self.median(route, client, mode), self.ratio(route, client, mode)
                cells += [f"{value:.0f}" if value else "-", f"{ratio:.2f}" if ratio else "-"]
            lines.append(f"| {route} | {client} | " + " | ".join(cells) + " |")
        lines += [
            "",
            f"Tunnels opened per {self.plan.tunnel_requests} sequential requests, counted in the "
            "log of the chain's first hop (Dante) and of the tinyproxy behind stunnel:",
            "",
        ]
        lines += ["| route | client | tunnels |", "| --- | --- | ---: |"]
        lines += [
            f"| {route} | {client} | {count} |" for (route, client), count in self.tunnels.items()
        ]
        lines += [
            "",
            "Config load + validate (warm, in process, median):",
            "",
            "| sample | ms |",
            "| --- | ---: |",
        ]
        lines += [f"| {name} | {ms:.2f} |" for name, ms in self.loads.items()]
        lines += [
            "",
            f"`botsession check sample_configs/chain.yaml`: {self.cli_ms:.0f} ms "
            f"(median of {self.plan.cli_runs}); "
            f'`python -c "import aiogram"`: {self.aiogram_ms:.0f} ms '
            f"(median of {_aiogram_runs(self.plan)}; check / import: "
            f"{self.cli_ms / self.aiogram_ms:.1%}); a bare `python -c pass`: "
            f"{self.bare_ms:.0f} ms (median of {self.plan.cli_runs})"
            if self.aiogram_ms
            else "",
            "",
        ]
        return lines

    def _render_silent_primary(self) -> list[str]:
        from benchmarks.clients import SILENT_PRIMARY

        lines = [
            "Time to first successful request with a silent primary: the primary proxy is a "
            "loopback TCP server that accepts connections and never answers, Dante the only "
            "fallback; the stand-in closes every connection, so each request opens a new tunnel "
            "through Dante. Each run is a fresh process (aiogram warmed up directly, untimed); "
            "first = wall time of the first getMe; next = median of the next "
            f"{self.plan.silent_next} getMe. Median (min to max) over the runs.",
            "",
            "| client | runs | first success | next requests |",
            "| --- | ---: | ---: | ---: |",
        ]
        labels = {"hedge": _hedge_after(), "connect": _connect_timeout()}
        for kind, runs in self.silent.items():
            first, following = self._silent_cells(runs)
            label = SILENT_PRIMARY[kind].format(**labels)
            lines.append(f"| {label} | {len(runs)} | {first} | {following} |")
        return [*lines, ""]

    def _silent_cells(self, runs: list[dict[str, Any]]) -> tuple[str, str]:
        """The first-success and next-requests cells of one client's runs."""
        ok = [run for run in runs if "first" in run]
        failed = [run for run in runs if "first" not in run]
        first = following = "-"
        if ok:
            first = _spread([run["first"] for run in ok], "{:.3f} s")
            nexts = [statistics.median(run["next"]) * 1000 for run in ok if run["next"]]
            following = _spread(nexts, "{:.2f} ms") if nexts else "-"
        if failed:
            errors = ", ".join(sorted({run["error"] for run in failed}))
            after = statistics.median(run["failed_after"] for run in failed)
            if all(run["capped"] for run in failed):
                text = f"not within {after:.1f} s (the smoke run's cap; no success)"
            else:
                text = f"never (fails after {after:.1f} s: {errors})"
            first = f"{text}; {first} in {len(ok)} of {len(runs)} runs" if ok else text
        return first, following


def _spread(values: list[float], form: str) -> str:
    if len(values) == 1:
        return form.format(values[0])
    middle = form.format(statistics.median(values))
    return f"{middle} ({form.format(min(values))} to {form.format(max(values))})"


def _hedge_after() -> float:
    """botsession's default ``fallback_hedge_after`` with the default connect_timeout."""
    from botsession.config_schema import DEFAULT_HEDGE_AFTER

    return min(DEFAULT_HEDGE_AFTER, _connect_timeout() / 2)


def _connect_timeout() -> float:
    from botsession.config_schema import BotSessionConfig

    return float(BotSessionConfig.model_fields["connect_timeout"].default)


class Worker:
    """One client in its own process (``benchmarks/worker.py``), timing runs on command."""

    def __init__(self, kind: type[Client], base: str, routes: list[Route]) -> None:
        self.kind = kind
        spec = json.dumps([dataclasses.asdict(route) for route in routes])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", kind.__name__, base],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(spec + "\n")  # not on the command line: it holds passwords
        self.process.stdin.flush()

    def wait_until_ready(self) -> None:
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {self.kind.__name__} worker did not start (see stderr)")

    def run(self, route: int, mode: str, calls: int, width: int) -> list[tuple[int, float]]:
        """``calls`` getMe round-trips on route number ``route``: the calls and seconds of
        each timed slice (``clients.slices``)."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"{route} {mode} {calls} {width}\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        if not reply:
            raise RuntimeError(f"the {self.kind.__name__} worker died (see stderr)")
        return [(int(size), float(seconds)) for size, seconds in json.loads(reply)]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()  # the worker exits at the end of its input
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def _workers(base: str, routes: list[Route]) -> Iterator[list[Worker]]:
    from benchmarks.clients import ALL, usable

    started: list[Worker] = []
    try:
        # Started together: each one imports its framework (seconds) at the same time.
        for kind in ALL:
            if any(usable(kind, route) for route in routes):
                started.append(Worker(kind, base, routes))
        for worker in started:
            worker.wait_until_ready()
        yield started
    finally:
        for worker in started:
            worker.close()


def _measure_rates(
    workers: list[Worker], routes: list[Route], plan: Plan, rng: random.Random, report: Report
) -> None:
    from benchmarks.clients import ALL, name_of, usable

    calls = {
        "sequential": plan.sequential,
        "concurrent": max(1, plan.concurrent // plan.width) * plan.width,
    }
    for index, route in enumerate(routes):
        clients = [worker for worker in workers if usable(worker.kind, route)]
        names = {worker: name_of(worker.kind, route) for worker in clients}
        for round_number in range(plan.rounds):
            # Palindromic order (A B C C B A): every client's two runs are centred on the same
            # moment, so drift of the machine during a round cancels out of every ratio. The
            # first half is a shuffled rotation, so no client always runs first or last.
            if round_number % len(clients) == 0:
                rng.shuffle(clients)
            clients.append(clients.pop(0))
            for mode, count in calls.items():
                elapsed = dict.fromkeys(clients, 0.0)
                for worker in [*clients, *reversed(clients)]:
                    # Each run opens its own tunnels and closes them after: no client's idle
                    # tunnels sit in the proxy while another one is measured (Dante gives each
                    # worker process up to 32 sessions, so leftovers would skew who gets which).
                    slices = worker.run(index, mode, count, plan.width)
                    elapsed[worker] += sum(seconds for _, seconds in slices)
                    best = max(size / seconds for size, seconds in slices)
                    report.add_best(route.name, names[worker], mode, best)
                rates = {names[worker]: 2 * count / seconds for worker, seconds in elapsed.items()}
                raw_rate = next(rate for name, rate in rates.items() if name.startswith("raw"))
                for name, rate in rates.items():
                    report.add(route.name, name, mode, rate, rate / raw_rate)
    # Report rows in a fixed order (that of clients.ALL), not the shuffled one.
    rank = {
        name_of(kind, route): number
        for number, kind in enumerate(ALL)
        for route in routes
        if usable(kind, route)
    }
    route_names = [route.name for route in routes]
    report.order.sort(key=lambda rc: (route_names.index(rc[0]), rank[rc[1]]))


def _measure_tunnels(workers: list[Worker], servers: Servers, plan: Plan, report: Report) -> None:
    """Count, in the proxy's own log, the tunnels each client opens for sequential requests:
    through the chain's first hop (Dante), and through the HTTPS proxy (tinyproxy's log)."""
    from benchmarks.clients import name_of, usable

    for index, route in enumerate(servers.routes):
        proxy = servers.counted.get(route.name)
        if proxy is None:
            continue
        for worker in workers:
            if usable(worker.kind, route):
                before = len(proxy.destinations())
                worker.run(index, "sequential", plan.tunnel_requests, 1)
                time.sleep(0.3)  # let the daemon flush its log
                tunnels = len(proxy.destinations()) - before
                report.tunnels[route.name, name_of(worker.kind, route)] = tunnels


def _measure_silent_primary(plan: Plan, dante: Any, report: Report) -> None:
    """Time to the first successful getMe when the primary proxy accepts and never answers."""
    with _standin(close=True) as base, _silent_primary() as silent:
        spec = {"silent": silent, "fallback": dante.url("socks5"), "next": plan.silent_next}
        for kind in ("default", "no-hedge", "aiogram"):
            report.silent[kind] = []
        # aiogram's own session waits for its own timeout (60 s): one run, alongside the
        # others (it only waits on an idle socket, so it does not slow them down).
        aiogram = _first_success_start("aiogram", base, {**spec, "cap": plan.silent_cap})
        try:
            for _ in range(plan.silent_runs):
                for kind in ("default", "no-hedge"):
                    worker = _first_success_start(kind, base, {**spec, "cap": None})
                    report.silent[kind].append(_first_success_result(kind, worker))
        finally:
            report.silent["aiogram"].append(_first_success_result("aiogram", aiogram))


def _first_success_start(kind: str, base: str, spec: dict[str, Any]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "benchmarks.worker", "--first-success", kind, base]
    process = subprocess.Popen(
        command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdin is not None
    process.stdin.write(json.dumps(spec) + "\n")  # not on the command line: it holds passwords
    process.stdin.close()
    return process


def _first_success_result(kind: str, process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    with process:
        reply = process.stdout.read().strip().splitlines()
    if process.returncode or not reply:
        raise RuntimeError(f"the {kind} first-success worker failed (see stderr)")
    result: dict[str, Any] = json.loads(reply[-1])
    return result


def _measure_config_loads(plan: Plan, report: Report) -> None:
    from botsession import load_config

    os.environ.setdefault("PROXY_PASSWORD", "benchmark")
    for sample in sorted(SAMPLES.glob("*.yaml")):
        load_config(sample)
        timings = []
        for _ in range(plan.loads):
            started = time.perf_counter()
            load_config(sample)
            timings.append((time.perf_counter() - started) * 1000)
        report.loads[sample.name] = statistics.median(timings)


def _measure_cli(plan: Plan, report: Report) -> None:
    botsession = Path(sys.executable).with_name("botsession")
    check = [str(botsession), "check", "--quiet", str(SAMPLES / "chain.yaml")]
    report.cli_ms = _wall_ms(check, plan.cli_runs)
    report.aiogram_ms = _wall_ms([sys.executable, "-c", "import aiogram"], _aiogram_runs(plan))
    report.bare_ms = _wall_ms([sys.executable, "-c", "pass"], plan.cli_runs)


def _aiogram_runs(plan: Plan) -> int:
    """Runs of ``import aiogram``: it takes seconds, so half as many as of the others."""
    return max(1, plan.cli_runs // 2)


def _wall_ms(command: list[str], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def _machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    return (
        f"Machine: {model}, {os.cpu_count()} cores{memory}; {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; all servers on loopback."
    )


if __name__ == "__main__":
    raise SystemExit(main())
