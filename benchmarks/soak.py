"""Soak: Bot API requests through a primary proxy that flaps, with a working fallback (#18).

    .venv/bin/python benchmarks/soak.py                      # 180 s per client, 10,000 requests
    .venv/bin/python benchmarks/soak.py --seconds 20 --requests 800 --period 2
    .venv/bin/python benchmarks/soak.py --reset-established --option fallback_retry_primary_after=5

For each client in turn (``--clients plain,aiogram,ptb``) it starts, on loopback and in this
process (a background thread): a stand-in Bot API that records every request with the address
it came from (``tests.flapping.PeerCountingApi``), the primary's upstream SOCKS5 proxy (its
connections to the stand-in leave from 127.0.0.2), a working fallback SOCKS5 proxy (from
127.0.0.3) and, in front of the primary's proxy, a relay that flaps
(``tests.flapping.FlappingRelay``): healthy for ``--period`` seconds, then silent, healthy,
refusing, healthy, hanging up, … With ``--reset-established`` the connections through the relay
are reset when a fault begins. ``--server-delay 0.2`` makes the stand-in answer after 200 ms
(as far away as the real Bot API: more connections in use, and requests in flight when a fault
begins); ``--close-connections`` makes it close every connection after its answer, so that every
request needs a new tunnel and meets the relay's mode of the moment. ``--faults`` picks the
faults and their order (default ``silent,refusing,hanging up``).

The client is built through botsession with ``proxy=<relay>``, ``fallback=[<fallback>]`` and
botsession's defaults (``--option key=value`` sets any other setting; the value is YAML, so
``null`` and numbers work). It makes ``--requests`` calls, getMe and sendMessage by turns, each
with a unique id (sendMessage's text, an extra ``soak_id`` field of getMe), started at an even
pace over ``--seconds`` with at most ``--in-flight`` at once. A client run is aborted after
``seconds * 2 + 30`` seconds in all; requests unfinished then count as lost ("aborted").

Per client it prints a Markdown table row: the requests; those the client saw fail ("lost"),
split into those the server never received ("unsent") and those it did ("after sent"); the
requests the server received twice or more ("duplicated"); latency of the successful requests;
the share of the requests the server received through the primary (by peer address); route
switches (the router's count where the client exposes it, else the changes of the active route
seen by polling ``route_status()`` every 0.1 s); the connections the relay accepted during
fault windows ("dead-route connects"), in all and per minute. Details follow the table: the
relay's counters, how long the primary was the active route, the switches logged, the first
errors.

Only 127.0.0.0/8 is used. Nothing here needs the Debian daemons of ``benchmarks/run.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: benchmarks/ is on the path, the root is not
    sys.path.insert(0, str(ROOT))

from tests.flapping import (  # noqa: E402
    FAULTS,
    FlappingRelay,
    PeerCountingApi,
    RelayCounts,
    source_bound_proxy,
)
from tests.servers import BackgroundLoop, InProcessProxy  # noqa: E402

TOKEN = "42:SOAK-TOKEN"  # noqa: S105 - the stand-in accepts any token
CHAT_ID = 1
PRIMARY_SOURCE = "127.0.0.2"
"""Where the primary's upstream proxy connects to the stand-in from."""
FALLBACK_SOURCE = "127.0.0.3"
"""Where the fallback proxy connects to the stand-in from."""
POLL_EVERY = 0.1
"""Seconds between two looks at ``route_status()``."""
STOP_LIMIT = 10.0
"""The longest a client may take to close (seconds)."""
SETTLE = 0.5
"""Seconds the stand-in is given, after the last request ended, for requests still on their way."""
ERRORS_SHOWN = 5
"""Distinct errors shown per client."""
CLIENTS = ("plain", "aiogram", "ptb")
SLOW = 1.0
"""A successful request that took this long (seconds) or more is counted as slow."""


# --- the clients ------------------------------------------------------------------------------


class SoakClient:
    """One way of calling the Bot API through botsession: ``start`` builds it, ``get_me`` and
    ``send_message`` make one request tagged with ``key``."""

    name = "?"

    def __init__(self, base: str, options: dict[str, Any]) -> None:
        self.base = base
        self.options = options

    @staticmethod
    def prepare() -> None:
        """Import what the client needs (aiogram takes seconds), before the clock starts."""

    async def start(self) -> None:
        raise NotImplementedError

    async def get_me(self, key: str) -> None:
        raise NotImplementedError

    async def send_message(self, key: str) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def route_status(self) -> tuple[Any, ...]:
        """botsession's ``route_status()`` of the client."""
        raise NotImplementedError

    def router(self) -> Any | None:
        """botsession's router behind the client, if it can be reached (not public API)."""
        return None


class Plain(SoakClient):
    """A plain aiohttp session over botsession's route (``build_client_session``)."""

    name = "plain aiohttp (build_client_session)"
    session: Any

    async def start(self) -> None:
        from botsession import build_client_session

        self.session = build_client_session(**self.options)

    async def _post(self, method: str, form: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base}/bot{TOKEN}/{method}"
        async with self.session.post(url, data=form) as response:
            body: dict[str, Any] = await response.json()
        if not body.get("ok"):
            raise RuntimeError(f"not ok: {body}")
        return body

    async def get_me(self, key: str) -> None:
        await self._post("getMe", {"soak_id": key})

    async def send_message(self, key: str) -> None:
        body = await self._post("sendMessage", {"chat_id": str(CHAT_ID), "text": key})
        if body["result"]["text"] != key:
            raise RuntimeError(f"sent {key!r}, the answer says {body['result']['text']!r}")

    async def stop(self) -> None:
        await self.session.close()

    def route_status(self) -> tuple[Any, ...]:
        return tuple(self.session.connector.route_status())

    def router(self) -> Any | None:
        return getattr(self.session.connector, "router", None)


class Aiogram(SoakClient):
    """aiogram's ``Bot`` with botsession's session (``build_session_from_config``)."""

    name = "aiogram Bot (build_session_from_config)"
    bot: Any

    @staticmethod
    def prepare() -> None:
        import aiogram.methods  # noqa: F401

        import botsession.session  # noqa: F401

    async def start(self) -> None:
        from aiogram import Bot

        from botsession import build_session_from_config

        self.bot = Bot(TOKEN, session=build_session_from_config(**self.options))

    async def get_me(self, key: str) -> None:
        from aiogram.methods import GetMe

        await self.bot(GetMe(soak_id=key))  # extra fields are sent as form fields

    async def send_message(self, key: str) -> None:
        message = await self.bot.send_message(CHAT_ID, key)
        if message.text != key:
            raise RuntimeError(f"sent {key!r}, the answer says {message.text!r}")

    async def stop(self) -> None:
        await self.bot.session.close()

    def route_status(self) -> tuple[Any, ...]:
        return tuple(self.bot.session.route_status())

    def router(self) -> Any | None:
        arguments = getattr(self.bot.session, "_connector_init", None)
        return arguments.get("router") if isinstance(arguments, dict) else None


class Ptb(SoakClient):
    """python-telegram-bot's ``Bot`` with botsession's request (``build_ptb_request``). Its
    ``initialize()`` makes one getMe without an id (the stand-in counts it as untracked)."""

    name = "python-telegram-bot Bot (build_ptb_request)"
    bot: Any
    request: Any

    @staticmethod
    def prepare() -> None:
        import telegram  # noqa: F401

        import botsession.ptb  # noqa: F401

    async def start(self) -> None:
        from telegram import Bot

        from botsession.ptb import build_ptb_request

        self.request = build_ptb_request(**self.options)
        self.bot = Bot(TOKEN, base_url=f"{self.base}/bot", request=self.request)
        await self.bot.initialize()

    async def get_me(self, key: str) -> None:
        await self.bot.get_me(api_kwargs={"soak_id": key})

    async def send_message(self, key: str) -> None:
        message = await self.bot.send_message(CHAT_ID, key)
        if message.text != key:
            raise RuntimeError(f"sent {key!r}, the answer says {message.text!r}")

    async def stop(self) -> None:
        await self.bot.shutdown()

    def route_status(self) -> tuple[Any, ...]:
        return tuple(self.request.route_status())

    def router(self) -> Any | None:
        return getattr(self.request, "_router", None)


KINDS: dict[str, type[SoakClient]] = {"plain": Plain, "aiogram": Aiogram, "ptb": Ptb}


# --- one run ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One request as the client saw it."""

    key: str
    method: str
    seconds: float | None = None
    """How long it took (None: not finished)."""
    error: str | None = None
    """``Type: message`` of what it raised (None: it succeeded)."""


@dataclass
class RouteWatch:
    """What polling the routes saw: the active route over time and its changes."""

    changes: int = 0
    primary_seconds: float = 0.0
    watched_seconds: float = 0.0
    active: int | None = None


@dataclass
class Run:
    """Everything measured in one client's run."""

    client: str
    requests: int
    outcomes: list[Outcome]
    by_key: Counter[str]
    by_peer_of_tracked: Counter[str]
    untracked: int
    relay: RelayCounts
    relay_lead: float
    """Seconds from the relay's window 0 to the first request (the client's start)."""
    watch: RouteWatch
    router_switches: int | None
    logged_switches: list[tuple[float, str]]
    """Each switch botsession logged: seconds from the first request, the message."""
    seconds: float
    aborted: bool
    problem: str | None = None
    """Why the run could not be made at all (the client could not start), if so."""
    errors: Counter[str] = field(default_factory=Counter)


class SwitchLog(logging.Handler):
    """Keeps the WARNING records of the ``botsession`` logger (each route switch is one)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[tuple[float, str]] = []
        """Each record: when (``time.monotonic()``), its message."""

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((time.monotonic(), record.getMessage()))


@contextlib.contextmanager
def switch_log() -> Iterator[SwitchLog]:
    """Collect botsession's warnings (instead of printing them) while the block runs."""
    logger = logging.getLogger("botsession")
    handler = SwitchLog()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


@dataclass
class Servers:
    """The stand-in, the two proxies and the relay of one run."""

    api: PeerCountingApi
    primary: InProcessProxy
    fallback: InProcessProxy
    relay: FlappingRelay


@contextlib.contextmanager
def servers(background: BackgroundLoop, args: argparse.Namespace) -> Iterator[Servers]:
    """Start the servers of one run on ``background`` and stop them afterwards."""
    with contextlib.ExitStack() as stack:
        api = PeerCountingApi(background)
        api.start()
        api.delay = args.server_delay
        api.close_connections = args.close_connections
        stack.callback(api.stop)
        primary = source_bound_proxy(background, "socks5", PRIMARY_SOURCE)
        primary.start()
        stack.callback(primary.stop)
        fallback = source_bound_proxy(background, "socks5", FALLBACK_SOURCE)
        fallback.start()
        stack.callback(fallback.stop)
        relay = FlappingRelay(
            background,
            primary.port,
            period=args.period,
            faults=args.faults,
            reset_established=args.reset_established,
        )
        stack.callback(relay.stop)
        yield Servers(api, primary, fallback, relay)


async def watch_routes(client: SoakClient, watch: RouteWatch, limit: float) -> None:
    """Poll the client's routes every ``POLL_EVERY`` seconds (at most ``limit`` seconds): count
    the changes of the active route and the time the primary is active."""
    loop = asyncio.get_running_loop()
    last = loop.time()
    for _ in range(int(limit / POLL_EVERY) + 1):
        router = client.router()
        active: int | None
        if router is not None and isinstance(getattr(router, "active", None), int):
            active = router.active
        else:
            states = [status.state for status in client.route_status()]
            active = states.index("active") if "active" in states else watch.active
        now = loop.time()
        if watch.active == 0:
            watch.primary_seconds += now - last
        watch.watched_seconds += now - last
        last = now
        if active is not None and watch.active is not None and active != watch.active:
            watch.changes += 1
        watch.active = active
        await asyncio.sleep(POLL_EVERY)


async def drive(client: SoakClient, args: argparse.Namespace, outcomes: list[Outcome]) -> None:
    """Start the requests at an even pace over ``--seconds``, at most ``--in-flight`` at once,
    and wait for them all."""
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(args.in_flight)
    tasks: set[asyncio.Task[None]] = set()
    spacing = args.seconds / args.requests

    async def one(outcome: Outcome) -> None:
        began = loop.time()
        try:
            if outcome.method == "getMe":
                await client.get_me(outcome.key)
            else:
                await client.send_message(outcome.key)
        except Exception as error:
            outcome.error = f"{type(error).__module__}.{type(error).__qualname__}: {error}"
        finally:
            outcome.seconds = loop.time() - began
            slots.release()

    origin = loop.time()
    try:
        for index, outcome in enumerate(outcomes):
            await asyncio.sleep(max(0.0, origin + index * spacing - loop.time()))
            await slots.acquire()
            tasks.add(loop.create_task(one(outcome)))
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Measured:
    """How the client's part of a run went."""

    seconds: float = 0.0
    """From the first request to the last one's end (or the abort)."""
    began: float = 0.0
    """When the first request started (``time.monotonic()``)."""
    aborted: bool = False
    problem: str | None = None
    router_switches: int | None = None


async def measure(
    client: SoakClient, args: argparse.Namespace, outcomes: list[Outcome], watch: RouteWatch
) -> Measured:
    """Start the client, make the requests while watching its routes, within the run's limit."""
    limit = args.seconds * 2 + 30
    loop = asyncio.get_running_loop()
    measured = Measured()
    began = loop.time()
    before: int | None = None
    try:
        async with asyncio.timeout(limit):
            await client.start()
            before = getattr(client.router(), "switches", None)
            began = loop.time()  # the requests' time, without the client's start
            measured.began = time.monotonic()
            watcher = loop.create_task(watch_routes(client, watch, limit))
            try:
                await drive(client, args, outcomes)
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
                after = getattr(client.router(), "switches", None)
                if isinstance(before, int) and isinstance(after, int):
                    measured.router_switches = after - before
    except TimeoutError:
        measured.aborted = True
    except Exception as error:
        measured.problem = f"{type(error).__qualname__}: {error}"
    measured.seconds = loop.time() - began
    return measured


async def run_client(
    kind: str, args: argparse.Namespace, background: BackgroundLoop, run_number: int
) -> Run:
    """One client's soak, from starting its servers to stopping them."""
    outcomes = [
        Outcome(f"soak-{run_number}-{index}", "getMe" if index % 2 == 0 else "sendMessage")
        for index in range(args.requests)
    ]
    watch = RouteWatch()
    KINDS[kind].prepare()
    with servers(background, args) as up, switch_log() as log:
        up.relay.start()  # the windows are timed from here
        options: dict[str, Any] = {
            "proxy": up.relay.url(),
            "fallback": [up.fallback.url()],
            "api": {"base": up.api.base},
            **args.options,
        }
        client = KINDS[kind](up.api.base, options)
        measured = await measure(client, args, outcomes, watch)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STOP_LIMIT):
                await client.stop()
        await asyncio.sleep(SETTLE)  # requests still on their way reach the stand-in
        relay = up.relay.counts()
        by_key = Counter(up.api.by_key)
        received = list(up.api.received)
    tracked = {outcome.key for outcome in outcomes}
    for outcome in outcomes:
        if outcome.seconds is None and outcome.error is None:
            outcome.error = "aborted: unfinished when the soak's time was up"
    return Run(
        client=KINDS[kind].name,
        requests=len(outcomes),
        outcomes=outcomes,
        by_key=by_key,
        by_peer_of_tracked=Counter(r.peer for r in received if r.key in tracked),
        untracked=sum(1 for r in received if r.key not in tracked),
        relay=relay,
        relay_lead=measured.began - up.relay.origin,
        watch=watch,
        router_switches=measured.router_switches,
        logged_switches=[(at - measured.began, m) for at, m in log.messages if "switched" in m],
        seconds=measured.seconds,
        aborted=measured.aborted,
        problem=measured.problem,
        errors=Counter(outcome.error for outcome in outcomes if outcome.error is not None),
    )


# --- the report -------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float | None:
    """The ``share`` (0..1) percentile of ``values`` (nearest rank), or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank]


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


HEADER = (
    "| client | requests | ok | lost | lost unsent | lost after sent | duplicated "
    "| p50 ms | p99 ms | max ms | via primary | route switches | dead-route connects | per min |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
    "| ---: | ---: |",
)


def row(run: Run) -> str:
    """The run's table row."""
    lost = [o for o in run.outcomes if o.error is not None]
    unsent = sum(1 for o in lost if run.by_key[o.key] == 0)
    duplicated = sum(1 for o in run.outcomes if run.by_key[o.key] >= 2)
    latencies = [o.seconds for o in run.outcomes if o.error is None and o.seconds is not None]
    received = sum(run.by_peer_of_tracked.values())
    primary = run.by_peer_of_tracked[PRIMARY_SOURCE]
    share = f"{primary / received:.1%}" if received else "-"
    if run.router_switches is not None:
        switches = f"{run.router_switches}"
    else:
        switches = f"{run.watch.changes} (polled)"
    minutes = run.seconds / 60
    per_minute = f"{run.relay.fault_accepts / minutes:.1f}" if minutes > 0 else "-"
    cells = [
        run.client + (" (ABORTED)" if run.aborted else ""),
        f"{run.requests}",
        f"{run.requests - len(lost)}",
        f"{len(lost)}",
        f"{unsent}",
        f"{len(lost) - unsent}",
        f"{duplicated}",
        ms(percentile(latencies, 0.5)),
        ms(percentile(latencies, 0.99)),
        ms(max(latencies) if latencies else None),
        share,
        switches,
        f"{run.relay.fault_accepts}",
        per_minute,
    ]
    return "| " + " | ".join(cells) + " |"


def details(run: Run) -> list[str]:
    """What the row does not say: the relay's counts, the routes over time, the errors."""
    relay = run.relay
    faults = ", ".join(f"{mode} {count}" for mode, count in relay.fault_accepts_by_mode.items())
    watch = run.watch
    primary_time = (
        f"{watch.primary_seconds / watch.watched_seconds:.1%}" if watch.watched_seconds else "-"
    )
    received = sum(run.by_peer_of_tracked.values())
    finished = [o.seconds for o in run.outcomes if o.error is None and o.seconds is not None]
    slow = sum(1 for seconds in finished if seconds >= SLOW)
    lines = [
        f"* **{run.client}**: {run.seconds:.1f} s; the server received {received} tracked "
        f"requests ({dict(run.by_peer_of_tracked)}) and {run.untracked} untracked; "
        f"{slow} successful requests took {SLOW:g} s or more",
        f"  * relay: {relay.healthy_accepts} connections accepted in healthy windows "
        f"({relay.relayed} relayed), {relay.fault_accepts} in fault windows ({faults}), "
        f"{relay.resets} established connections reset, {relay.windows} window changes; "
        f"its windows began {run.relay_lead:.1f} s before the first request",
        f"  * routes: primary active {primary_time} of the time (polled every "
        f"{POLL_EVERY:g} s), {watch.changes} changes of the active route seen by polling, "
        f"router switches {run.router_switches if run.router_switches is not None else '-'}, "
        f"{len(run.logged_switches)} switches logged",
    ]
    lost = Counter(o.method for o in run.outcomes if o.error is not None)
    if lost:
        split = ", ".join(f"{count} {method}" for method, count in sorted(lost.items()))
        lines.append(f"  * lost: {split}")
    if run.problem:
        lines.append(f"  * the run failed: {run.problem}")
    if run.logged_switches:
        timeline = ", ".join(
            f"{at:.1f} s {'back to the primary' if 'switched back' in message else 'away'}"
            for at, message in run.logged_switches
        )
        lines.append(f"  * switches (from the first request): {timeline}")
    for _, message in run.logged_switches[:3]:
        lines.append(f"  * logged: {message[:300]}")
    for error, count in run.errors.most_common(ERRORS_SHOWN):
        lines.append(f"  * {count}x: {error[:300]}")
    if len(run.errors) > ERRORS_SHOWN:
        lines.append(f"  * … and {len(run.errors) - ERRORS_SHOWN} other distinct errors")
    return lines


def render(runs: list[Run], args: argparse.Namespace) -> str:
    """The table and its details, as Markdown."""
    settings = ", ".join(f"{key}={value!r}" for key, value in args.options.items()) or "defaults"
    lines = [
        f"Soak: {args.requests} requests (getMe and sendMessage by turns) over {args.seconds:g} s, "
        f"at most {args.in_flight} in flight; the primary flaps every {args.period:g} s "
        f"(healthy, then {', '.join(args.faults)} in turn), established connections "
        f"{'reset' if args.reset_established else 'kept'} when a fault begins; the stand-in "
        f"answers after {args.server_delay * 1000:g} ms"
        f"{' and closes every connection' if args.close_connections else ''}; botsession "
        f"settings: {settings}.",
        "",
        *HEADER,
        *(row(run) for run in runs),
        "",
    ]
    for run in runs:
        lines += details(run)
    return "\n".join(lines)


# --- the command line -------------------------------------------------------------------------


def _option(text: str) -> tuple[str, Any]:
    import yaml

    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError("expected key=value")
    return key.strip(), yaml.safe_load(value)


def _positive(kind: type[float] | type[int]) -> Any:
    def parse(text: str) -> float | int:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError("must be positive")
        return value

    return parse


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=_positive(float), default=180.0)
    parser.add_argument("--requests", type=_positive(int), default=10_000)
    parser.add_argument("--in-flight", type=_positive(int), default=20)
    parser.add_argument("--period", type=_positive(float), default=5.0, help="window length, s")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="plain,aiogram,ptb")
    parser.add_argument(
        "--faults", default=",".join(FAULTS), help=f"the faults in turn ({','.join(FAULTS)})"
    )
    parser.add_argument("--reset-established", action="store_true")
    parser.add_argument(
        "--server-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="the stand-in waits this long before each answer (the Bot API's latency)",
    )
    parser.add_argument(
        "--close-connections",
        action="store_true",
        help="the stand-in closes each connection after its answer: a new tunnel per request",
    )
    parser.add_argument(
        "--option",
        action="append",
        type=_option,
        default=[],
        metavar="KEY=VALUE",
        help="a botsession setting (YAML value), e.g. fallback_retry_primary_after=5",
    )
    args = parser.parse_args(argv)
    args.clients = [name.strip() for name in args.clients.split(",") if name.strip()]
    unknown = [name for name in args.clients if name not in KINDS]
    if unknown or not args.clients:
        parser.error(f"--clients: choose among {', '.join(KINDS)} (not {unknown})")
    args.faults = tuple(fault.strip() for fault in args.faults.split(","))
    if not args.faults or any(fault not in FAULTS for fault in args.faults):
        parser.error(f"--faults: choose among {', '.join(FAULTS)}")
    args.options = dict(args.option)
    return args


async def soak(args: argparse.Namespace) -> list[Run]:
    background = BackgroundLoop()
    runs = []
    try:
        for number, kind in enumerate(args.clients, 1):
            print(f"soaking {kind} …", file=sys.stderr, flush=True)
            started = time.monotonic()
            runs.append(await run_client(kind, args, background, number))
            print(f"  done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    finally:
        background.close()
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    runs = asyncio.run(soak(args))
    print(render(runs, args))
    return 1 if any(run.problem or run.aborted for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
