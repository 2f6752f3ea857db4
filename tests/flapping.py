"""A primary proxy that flaps (issue #18): a relay in front of a working proxy that is healthy,
then faulty, then healthy again, in windows of ``period`` seconds.

``FlappingRelay`` is a TCP forwarder on 127.0.0.1 (a free port) in front of an upstream proxy
(a working SOCKS5 or HTTP proxy on loopback, by its port). Windows alternate between
``healthy`` (every new connection is relayed to the upstream proxy) and a fault, the faults
taking turns (``FAULTS``):

* ``silent``: the connection is accepted and then nothing: no byte is relayed or answered, as a
  proxy whose packets are dropped (it is held until the client leaves, or ``SILENT_LIMIT``);
* ``refusing``: the connection is accepted and reset at once (RST, SO_LINGER 0): the client
  sees a reset on its first read, as soon as it would see a refused connection. The listening
  socket stays open, so the port cannot be lost to another program, and every connection
  attempt is counted;
* ``hanging up``: the connection is accepted and closed at once (FIN).

With ``reset_established`` the connections relayed so far are reset (RST to the client, the
upstream connection aborted) when a fault window begins; without it they keep working.

Windows are timed from ``start()`` on the event loop's monotonic clock: window 0 is healthy,
window 1 the first fault, window 2 healthy, window 3 the second fault, … A test can also drive
the relay by hand: ``FlappingRelay(..., cycling=False)``, or ``set_mode`` at any time (which
turns the cycling off), is deterministic.

The counters (``healthy_accepts``, ``fault_accepts`` — the connects to the dead route —,
``fault_accepts_by_mode``, ``resets``, ``relayed``) are plain integers written on the relay's
event loop; read them from any thread.

To tell which route each request took, ``source_bound_proxy`` makes an ``InProcessProxy`` whose
connections to the destination leave from a given loopback address (127.0.0.2 for the primary's
upstream proxy, 127.0.0.3 for the fallback), and ``PeerCountingApi`` a stand-in Bot API that
answers ``getMe`` and ``sendMessage`` and records, for each request, its method, its
``soak_id`` (or ``text``) and the address it came from.

A suite test drives the relay by hand (``background``, ``bot_api`` and ``proxy`` are the
fixtures of ``tests/conftest.py``)::

    from aiogram import Bot

    from .failover_support import states, until
    from .flapping import FlappingRelay
    from .support import TOKEN, session_for


    async def test_primary_that_refuses_then_heals(background, bot_api, proxy):
        bot_api.close_connections = True  # a new tunnel for every request: each meets the mode
        upstream, fallback = proxy("socks5"), proxy("socks5")
        relay = FlappingRelay(background, upstream.port, cycling=False).start()
        try:
            session = session_for(
                bot_api, relay.url(), fallback=[fallback.url()], fallback_retry_primary_after=1
            )
            async with Bot(TOKEN, session=session) as bot:
                await bot.get_me()  # through the primary
                assert (relay.healthy_accepts, len(fallback.destinations)) == (1, 0)

                relay.set_mode("refusing")  # in effect when set_mode returns
                await bot.get_me()  # reset at once: the fallback carries it
                assert relay.fault_accepts_by_mode["refusing"] == 1
                assert len(fallback.destinations) == 1
                assert states(session) == ["failed", "active"]

                relay.set_mode("healthy")  # the background check finds it healthy again
                assert await until(lambda: states(session) == ["active", "standby"], 10)
                await bot.get_me()
                assert relay.relayed == 3  # the first request, the check, this one
        finally:
            relay.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from aiohttp import web

from .failover_support import pump
from .servers import BackgroundLoop, BotApiStandIn, InProcessProxy
from .support import BOT_USER, LOOPBACK, TOKEN, reset

Mode = Literal["healthy", "silent", "refusing", "hanging up"]
"""What the relay does with a new connection: relay it, or one of the faults."""
MODES: tuple[Mode, ...] = get_args(Mode)
"""Every mode, ``healthy`` first."""
FAULTS: tuple[Mode, ...] = ("silent", "refusing", "hanging up")
"""The faults, in the order the fault windows take them by default."""

MAX_WINDOWS = 100_000
"""The most windows a relay cycles through (then it stays healthy): 5.8 days at 5 s."""
SILENT_LIMIT = 120.0
"""The longest a silent window holds a connection the client does not close (seconds)."""
HANG_UP_LIMIT = 5.0
"""After hanging up (FIN), the longest the relay waits for the client to close its side before
closing the socket (which would send an RST if the client's bytes are still unread)."""
ACCEPT_BATCH = 128
"""Connections accepted per wake-up of the listening socket (the rest at the next one)."""
CONTROL_TIMEOUT = 15.0
"""How long ``start``, ``stop`` and ``set_mode`` wait for the relay's event loop (seconds)."""


@dataclass(frozen=True)
class RelayCounts:
    """The relay's counters at one moment (``FlappingRelay.counts()``)."""

    healthy_accepts: int
    """Connections accepted in healthy windows."""
    fault_accepts: int
    """Connections accepted in fault windows: connects to the dead route."""
    fault_accepts_by_mode: dict[Mode, int]
    """``fault_accepts`` by the fault of the window they came in."""
    resets: int
    """Established relayed connections reset (at a fault window, or by hand)."""
    relayed: int
    """Healthy connections that reached the upstream proxy."""
    windows: int
    """Mode changes so far (by the cycle or by hand)."""


@dataclass(eq=False)
class _Pair:
    """A relayed connection: the client's side, the upstream side, and the task pumping them."""

    client: asyncio.StreamWriter
    task: asyncio.Task[None]
    upstream: asyncio.StreamWriter | None = None


class FlappingRelay:
    """A TCP forwarder in front of the upstream proxy at ``upstream_host:upstream`` that flaps
    (see the module): windows of ``period`` seconds, healthy and the ``faults`` in turn.

    ``background``: the loop it runs on, from ``start()`` to ``stop()``. ``cycling``: False
    starts it healthy and
    leaves the windows to ``set_mode``. ``reset_established``: reset the relayed connections
    when a fault window begins (else they survive). ``max_windows``: after this many windows
    it stays healthy (the cycle is bounded).
    """

    def __init__(
        self,
        background: BackgroundLoop,
        upstream: int,
        *,
        period: float = 5.0,
        faults: Sequence[Mode] = FAULTS,
        reset_established: bool = False,
        cycling: bool = True,
        upstream_host: str = LOOPBACK,
        max_windows: int = MAX_WINDOWS,
    ) -> None:
        """Set the relay up; nothing listens before ``start()``."""
        if period <= 0:
            raise ValueError("period must be positive")
        if not faults or any(fault not in FAULTS for fault in faults):
            raise ValueError(f"faults must be a non-empty sequence of {FAULTS}")
        self.background = background
        self.upstream = upstream
        self.upstream_host = upstream_host
        self.period = period
        self.faults: tuple[Mode, ...] = tuple(faults)
        self.reset_established = reset_established
        self.cycling = cycling
        self.max_windows = max_windows
        self.port = 0
        """The port it listens on, 127.0.0.1 (0 until started)."""
        self.healthy_accepts = 0
        """Connections accepted in healthy windows."""
        self.fault_accepts = 0
        """Connections accepted in fault windows: connects to the dead route."""
        self.fault_accepts_by_mode: dict[Mode, int] = dict.fromkeys(FAULTS, 0)
        """``fault_accepts`` by the fault of the window they came in."""
        self.resets = 0
        """Established relayed connections reset (at a fault window, or by hand)."""
        self.relayed = 0
        """Healthy connections that reached the upstream proxy."""
        self.transitions: list[tuple[float, Mode]] = []
        """Each mode change: seconds since start (monotonic), the new mode. Bounded by
        ``max_windows`` plus the changes made by hand."""
        self._mode: Mode = "healthy"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._origin = 0.0
        self._cycler: asyncio.Task[None] | None = None
        self._pairs: set[_Pair] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- what it is doing --------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """What the relay does with a new connection now."""
        return self._mode

    @property
    def origin(self) -> float:
        """When window 0 of the cycle began, on the event loop's clock (``time.monotonic()``
        with asyncio's default loops)."""
        return self._origin

    def url(self, scheme: str = "socks5") -> str:
        """The relay as a proxy URL (the upstream proxy's scheme: socks5 unless told)."""
        return f"{scheme}://{LOOPBACK}:{self.port}"

    def scheduled_mode(self, window: int) -> Mode:
        """The mode of window ``window`` (0, 1, …) of the cycle: even ones are healthy, odd
        ones take the faults in turn."""
        if window % 2 == 0:
            return "healthy"
        return self.faults[(window // 2) % len(self.faults)]

    def counts(self) -> RelayCounts:
        """The counters now."""
        return RelayCounts(
            healthy_accepts=self.healthy_accepts,
            fault_accepts=self.fault_accepts,
            fault_accepts_by_mode=dict(self.fault_accepts_by_mode),
            resets=self.resets,
            relayed=self.relayed,
            windows=len(self.transitions),
        )

    # --- starting and stopping ---------------------------------------------------------------

    def start(self) -> FlappingRelay:
        """Listen on the ``background`` loop; the windows are timed from now."""
        self.background.run(self._start(), CONTROL_TIMEOUT)
        return self

    def stop(self) -> None:
        """Stop listening and end every task and connection of the relay (on its loop)."""
        if self._loop is not None:
            self.background.run(self._stop(), CONTROL_TIMEOUT)

    async def _start(self) -> None:
        if self._sock is not None:
            raise RuntimeError("the relay is running already")
        self._loop = asyncio.get_running_loop()
        sock = socket.create_server((LOOPBACK, 0), backlog=ACCEPT_BATCH)
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._origin = self._loop.time()
        self._mode = "healthy"
        self._loop.add_reader(sock.fileno(), self._accept)
        if self.cycling:
            self._cycler = self._spawn(self._cycle(self._origin))

    async def _stop(self) -> None:
        if self._sock is not None:
            assert self._loop is not None
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        self._cycler = None
        for pair in list(self._pairs):
            _abort(pair.client)
            if pair.upstream is not None:
                _abort(pair.upstream)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pairs.clear()

    # --- driving it by hand ------------------------------------------------------------------

    def set_mode(self, mode: Mode) -> None:
        """Turn the cycling off and switch to ``mode`` now: when this returns, the next
        connection meets it (and, with ``reset_established``, a fault has reset the relayed
        connections). Call it from another thread than the relay's loop (a test's)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if self._loop is None:
            raise RuntimeError("the relay is not running")

        async def enter() -> None:
            self._set_by_hand(mode)

        self.background.run(enter(), CONTROL_TIMEOUT)

    # --- the loop's side ---------------------------------------------------------------------

    def _set_by_hand(self, mode: Mode) -> None:
        self.cycling = False
        if self._cycler is not None:
            self._cycler.cancel()
            self._cycler = None
        self._enter(mode)

    async def _cycle(self, origin: float) -> None:
        assert self._loop is not None
        for window in range(1, self.max_windows):
            await asyncio.sleep(max(0.0, origin + window * self.period - self._loop.time()))
            self._enter(self.scheduled_mode(window))
        await asyncio.sleep(max(0.0, origin + self.max_windows * self.period - self._loop.time()))
        self._enter("healthy")

    def _enter(self, mode: Mode) -> None:
        if mode == self._mode:
            return
        assert self._loop is not None
        self._mode = mode
        self.transitions.append((self._loop.time() - self._origin, mode))
        if mode != "healthy" and self.reset_established:
            self._reset_all()

    def _reset_all(self) -> None:
        pairs = list(self._pairs)
        for pair in pairs:
            reset(pair.client.transport)
            if pair.upstream is not None:
                reset(pair.upstream.transport)
            pair.task.cancel()
            self._pairs.discard(pair)
        self.resets += len(pairs)

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._sock is None:
                return
            try:
                conn, _ = self._sock.accept()
            except OSError:  # none waiting (BlockingIOError), or one that was gone already
                return
            conn.setblocking(False)
            mode = self._mode
            if mode == "healthy":
                self.healthy_accepts += 1
                self._spawn(self._relay(conn))
                continue
            self.fault_accepts += 1
            self.fault_accepts_by_mode[mode] += 1
            if mode == "refusing":
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()  # RST at once
            elif mode == "silent":
                self._spawn(self._swallow(conn))
            else:
                self._spawn(self._hang_up(conn))

    async def _relay(self, conn: socket.socket) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            reader, writer = await asyncio.open_connection(sock=conn)
        except OSError:
            conn.close()
            return
        pair = _Pair(writer, task)
        self._pairs.add(pair)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream)
        except OSError:
            self._pairs.discard(pair)
            reset(writer.transport)
            return
        pair.upstream = up_writer
        self.relayed += 1
        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            self._pairs.discard(pair)
            _abort(up_writer, gently=True)
            _abort(writer, gently=True)

    async def _swallow(self, conn: socket.socket) -> None:
        """Silent: read and drop whatever comes until the client leaves (bounded)."""
        await _read_until_gone(conn, SILENT_LIMIT)

    async def _hang_up(self, conn: socket.socket) -> None:
        """Hanging up: FIN at once, then wait (bounded) for the client to close its side, so
        that closing does not turn the FIN into a reset."""
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            conn.close()
            return
        await _read_until_gone(conn, HANG_UP_LIMIT)

    # --- plumbing ----------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


async def _read_until_gone(conn: socket.socket, limit: float) -> None:
    """Read and drop what the client sends on ``conn`` until it closes, for ``limit`` seconds
    at most, then close ``conn`` gently."""
    try:
        reader, writer = await asyncio.open_connection(sock=conn)
    except OSError:
        conn.close()
        return
    try:
        async with asyncio.timeout(limit):
            for _ in range(1_000_000):
                if not await reader.read(65536):
                    break
    except (OSError, TimeoutError):
        pass
    finally:
        _abort(writer, gently=True)


def _abort(writer: asyncio.StreamWriter, *, gently: bool = False) -> None:
    """Close ``writer``'s transport: with FIN when ``gently``, else at once."""
    if gently:
        writer.close()
    else:
        writer.transport.abort()


# --- telling the routes apart: proxies that leave from their own address ---------------------


def source_bound_proxy(background: BackgroundLoop, kind: str, source: str) -> InProcessProxy:
    """An ``InProcessProxy`` (not started) whose connections to the destination leave from
    ``source`` (a loopback address such as 127.0.0.2), so that a server on 127.0.0.1 sees by the
    peer address which proxy a request came through."""
    return InProcessProxy(background, kind, source=source)


@dataclass(frozen=True)
class Received:
    """One request as ``PeerCountingApi`` received it."""

    method: str
    key: str | None
    """The request's ``soak_id`` field, else its ``text`` (None: neither)."""
    peer: str
    """The address the request came from (which proxy, with ``SourceBoundProxy``)."""
    at: float
    """When it arrived (``time.monotonic()``)."""


@dataclass
class PeerCountingApi(BotApiStandIn):
    """A stand-in Bot API (``BotApiStandIn``) that answers ``getMe`` and ``sendMessage`` (a
    ``Message`` echoing ``chat_id`` and ``text``) and records each request in ``received``:
    method, ``soak_id`` (or ``text``), the peer address. ``by_key`` counts the requests for
    each key (a duplicate shows as 2 or more), ``by_peer`` those from each address. Other
    methods are answered as by ``BotApiStandIn``, except that nothing is dropped on purpose.
    ``delay`` (seconds before each answer) and ``close_connections`` work as there."""

    received: list[Received] = field(default_factory=list)
    by_key: Counter[str] = field(default_factory=Counter)
    by_peer: Counter[str] = field(default_factory=Counter)
    _messages: int = 0

    def reset(self) -> None:
        """Forget what was received (and what ``BotApiStandIn.reset`` forgets)."""
        super().reset()
        self.received.clear()
        self.by_key.clear()
        self.by_peer.clear()

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        form = await self._read_form(request, method)
        peer = request.remote or "?"
        key = form.get("soak_id") or form.get("text")
        self.received.append(Received(method, key, peer, time.monotonic()))
        if key is not None:
            self.by_key[key] += 1
        self.by_peer[peer] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if method == "getUpdates":  # long polling, the confirmed updates dropped
            await self._long_poll(form)
        response = self._message(form) if method == "sendMessage" else self._answer(method, form)
        if self.close_connections:
            response.force_close()
        return response

    def _message(self, form: dict[str, str]) -> web.Response:
        self._messages += 1
        try:
            chat_id = int(form.get("chat_id", "1"))
        except ValueError:
            chat_id = 1
        message = {
            "message_id": self._messages,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Soak"},
            "from": BOT_USER,
            "text": form.get("text", ""),
        }
        body = json.dumps({"ok": True, "result": message})
        return web.Response(text=body, content_type="application/json")


# --- a long-polling bot ------------------------------------------------------------------------


def update(number: int) -> dict[str, Any]:
    """A Bot API update (a text message) with id ``number``, as ``getUpdates`` gives it."""
    return {
        "update_id": number,
        "message": {
            "message_id": number,
            "date": 0,
            "chat": {"id": 1, "type": "private", "first_name": "Poll"},
            "text": f"u{number}",
        },
    }


@contextlib.asynccontextmanager
async def polling(
    framework: str,
    settings: dict[str, Any],
    handle: Callable[[int], None],
    *,
    poll_timeout: int = 1,
) -> AsyncIterator[None]:
    """A long-polling bot over botsession's ``settings`` (``api.base`` included) while the
    block runs: aiogram's ``Dispatcher.start_polling`` or PTB's ``Updater.start_polling``
    (``framework``: "aiogram" or "ptb"), calling ``handle`` with each message's id."""
    from botsession import build_ptb_request, build_session_from_config

    if framework == "aiogram":
        from aiogram import Bot, Dispatcher
        from aiogram.types import Message

        dispatcher = Dispatcher()

        @dispatcher.message()
        async def on_message(message: Message) -> None:
            handle(message.message_id)

        async with Bot(TOKEN, session=build_session_from_config(**settings)) as bot:
            task = asyncio.ensure_future(
                dispatcher.start_polling(
                    bot, polling_timeout=poll_timeout, handle_signals=False, close_bot_session=False
                )
            )
            try:
                yield
            finally:
                await dispatcher.stop_polling()
                await task
        return

    from telegram import Update
    from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

    async def on_update(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        handle(update.message.message_id)

    application = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(f"{settings['api']['base']}/bot")
        .request(build_ptb_request(**settings))
        .get_updates_request(build_ptb_request(**settings))
        .build()
    )
    application.add_handler(MessageHandler(filters.ALL, on_update))
    async with application:
        assert application.updater is not None
        await application.updater.start_polling(timeout=poll_timeout, poll_interval=0)
        await application.start()
        try:
            yield
        finally:
            await application.updater.stop()
            await application.stop()
