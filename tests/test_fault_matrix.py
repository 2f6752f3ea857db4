"""The fault matrix: every way a proxy can break a handshake, at either hop of a chain.

A ``FaultProxy`` (tests/faultproxy.py) spoils one answer of one handshake step: it closes,
resets, stalls, answers garbage, answers half, or answers correctly in small TCP segments. Each
cell puts it at hop 1 or hop 2 of a two-hop chain (the other hop is a correct SOCKS5 proxy),
with or without a fallback route, and requests ``getMe`` from the stand-in Bot API. As an
``https`` hop, the faulty HTTP proxy sits behind a ``TlsRelay`` (stunnel's part): the TLS
handshake succeeds and the fault comes inside TLS, its close as a close_notify and a FIN, its
reset as an RST, its segments as separate TLS records.

What the matrix proves, for every protocol step and fault:

- a failure is a ``ProxyHopError`` naming the faulty hop and the right reason (``closed``,
  ``reset``, ``timeout``, ``protocol``), never a raw exception from deeper down;
- a stall is reported at ``connect_timeout``; anything the proxy said is a failure at once (a
  garbage answer is recognised when it arrives, not by timing out): with a 30 s
  ``connect_timeout`` and a 15 s hedge delay, the reason is not ``timeout``, the primary
  failed on the fault rather than losing to the fallback, and it all took under 15 s;
- with a fallback route the request succeeds through it instead;
- a correct answer in pieces is a correct answer: the request succeeds through the chain;
- the Bot API never receives a request twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError

from botsession import ProxyHopError, build_client_session, build_session_from_config
from botsession.net.connector import RouteConnector

from .conftest import ProxyFactory
from .faultproxy import (
    FAULTS,
    STEPS,
    Fault,
    FaultProxy,
    FaultProxyFactory,
    HopKind,
    Step,
    TlsFront,
)
from .servers import BotApiStandIn, InProcessProxy
from .support import LATE, PATIENT, TOKEN

CONNECT_TIMEOUT = 1.0
"""connect_timeout of the clients whose request a stalling proxy fails (seconds); with a
fallback, half of it is the hedge delay. The others get ``PATIENT``, which no cell waits out."""

REASONS: dict[Fault, str | None] = {
    "close": "closed",
    "truncated": "closed",
    "reset": "reset",
    "stall": "timeout",
    "garbage": "protocol",
    "split": None,  # a valid answer in pieces: success
}
"""The ``ProxyHopError.reason`` each fault must produce (None: the request succeeds)."""
FAILING: tuple[Fault, ...] = tuple(fault for fault in FAULTS if REASONS.get(fault))
STAGES: tuple[tuple[HopKind, Step], ...] = (
    *((protocol, step) for protocol, steps in STEPS.items() for step in steps),
    ("https", "reply"),
)
"""socks4:reply, socks4a:reply, socks5:greeting, socks5:auth, socks5:reply, http:reply,
https:reply (the CONNECT answer inside TLS)."""


@dataclass(frozen=True)
class Cell:
    """One cell of the matrix."""

    protocol: HopKind
    step: Step
    fault: Fault
    position: Literal[1, 2]
    """Where the faulty proxy sits in the two-hop chain."""
    fallback: bool

    def __str__(self) -> str:
        route = "fallback" if self.fallback else "no-fallback"
        return f"{self.protocol}:{self.step}-{self.fault}-hop{self.position}-{route}"


def cells(
    faults: tuple[Fault, ...], fallback: tuple[bool, ...], positions: tuple[Literal[1, 2], ...]
) -> list[Cell]:
    return [
        Cell(protocol, step, fault, position, with_fallback)
        for protocol, step in STAGES
        for fault in faults
        for position in positions
        for with_fallback in fallback
    ]


FAILING_ALONE = cells(FAILING, (False,), (1, 2))
FAILING_WITH_FALLBACK = cells(FAILING, (True,), (1, 2))
SPLIT = cells(("split",), (False, True), (1, 2))
# Through a real aiogram Bot, the faulty proxy at hop 2: one protocol step per fault.
AIOGRAM_STAGES: dict[Fault, tuple[HopKind, Step]] = {
    "close": ("socks5", "greeting"),
    "reset": ("https", "reply"),
    "stall": ("socks4", "reply"),
    "garbage": ("http", "reply"),
    "truncated": ("socks5", "auth"),
    "split": ("https", "reply"),
}
AIOGRAM_FAILING = [Cell(*AIOGRAM_STAGES[fault], fault, 2, False) for fault in FAILING]
AIOGRAM_SERVED = [
    *(Cell(*AIOGRAM_STAGES[fault], fault, 2, True) for fault in (*FAILING, "split")),
    Cell(*AIOGRAM_STAGES["split"], "split", 2, False),
]


def matrix_size() -> int:
    """The number of cells in the matrix (each is one test case)."""
    return sum(
        len(group)
        for group in (
            FAILING_ALONE,
            FAILING_WITH_FALLBACK,
            SPLIT,
            AIOGRAM_FAILING,
            AIOGRAM_SERVED,
        )
    )


# --- fixtures and helpers ----------------------------------------------------------------------


Hop = FaultProxy | TlsFront


@dataclass
class Chain:
    """The two hops of the primary route and the fallback proxy (if any)."""

    faulty: Hop
    good: Hop
    position: int
    backup: InProcessProxy | None
    connect_timeout: float
    hedge_after: float | None = None
    """fallback_hedge_after, when there is a fallback (None: the default)."""

    @property
    def hops(self) -> list[Hop]:
        return [self.faulty, self.good] if self.position == 1 else [self.good, self.faulty]

    def settings(self, bot_api: BotApiStandIn) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "proxy": [hop.url() for hop in self.hops],
            "connect_timeout": self.connect_timeout,
            "api": {"base": bot_api.base},
        }
        if self.backup is not None:
            settings["fallback"] = [self.backup.url()]
            if self.hedge_after is not None:
                settings["fallback_hedge_after"] = self.hedge_after
        return settings


def chain_for(cell: Cell, fault_proxy: FaultProxyFactory, proxy: ProxyFactory) -> Chain:
    faulty = fault_proxy(cell.protocol, cell.step, cell.fault)
    good = fault_proxy("socks5")
    backup = proxy("http") if cell.fallback else None
    if cell.fault != "stall":  # a failure at once: neither timeout nor hedge delay comes
        return Chain(faulty, good, cell.position, backup, PATIENT, PATIENT / 2)
    if backup is None:  # the stall fails the request at connect_timeout
        return Chain(faulty, good, cell.position, backup, CONNECT_TIMEOUT)
    # The hedge delay hands the request to the fallback, which may take its time to connect.
    return Chain(faulty, good, cell.position, backup, PATIENT, CONNECT_TIMEOUT / 2)


@dataclass
class Outcome:
    elapsed: float
    status: int | None = None
    body: Any = None
    error: BaseException | None = None
    primary_error: str | None = None
    """The primary route's last error, as ``route_status()`` tells it."""


async def request_get_me(chain: Chain, bot_api: BotApiStandIn) -> Outcome:
    """``GET /bot<token>/getMe`` with a plain aiohttp session over ``chain``, timed."""
    async with build_client_session(**chain.settings(bot_api)) as client:
        started = time.monotonic()
        try:
            async with client.get(f"{bot_api.base}/bot{TOKEN}/getMe") as response:
                body = await response.json()
                outcome = Outcome(time.monotonic() - started, response.status, body)
        except Exception as error:  # judged by the test, which names what it got
            outcome = Outcome(time.monotonic() - started, error=error)
        assert isinstance(client.connector, RouteConnector)
        outcome.primary_error = client.connector.route_status()[0].last_error
        return outcome


def assert_in_time(cell: Cell, elapsed: float, primary_error: str | None) -> None:
    """A stall costs connect_timeout (a little more on a busy machine, not a timeout of
    aiohttp's); anything the proxy said fails the primary at once: well within the 30 s
    connect_timeout, and before the hedge delay sends the request to the fallback."""
    if cell.fault == "stall":
        assert elapsed < CONNECT_TIMEOUT + LATE, f"{cell}: took {elapsed:.2f} s"
        if not cell.fallback:
            assert elapsed > CONNECT_TIMEOUT - 0.05, f"{cell}: took {elapsed:.2f} s"
        return
    assert elapsed < PATIENT / 2, f"{cell}: took {elapsed:.2f} s for a fault the proxy announced"
    if REASONS.get(cell.fault):  # else the primary worked
        # Not "no tunnel after 15.0 s ...; route fallback[0] was ready first": the hedge won. (A check
        # may have met the fault again by now.)
        error = (primary_error or "").removeprefix("background check: ")
        assert error.startswith(f"proxy hop {cell.position} of 2"), f"{cell}: {primary_error}"


def assert_served(outcome: Outcome) -> None:
    assert outcome.error is None, f"{type(outcome.error).__name__}: {outcome.error}"
    assert outcome.status == 200
    assert outcome.body["ok"] is True
    assert outcome.body["result"]["username"] == "standin_bot"


# --- the matrix --------------------------------------------------------------------------------


def test_the_matrix_covers_every_step_and_fault() -> None:
    """Every fault the proxy can inject, at every step of every protocol, is a cell."""
    covered = {(c.protocol, c.step, c.fault) for c in FAILING_ALONE + FAILING_WITH_FALLBACK + SPLIT}
    offered = {(protocol, step, fault) for protocol, step in STAGES for fault in FAULTS}
    assert covered == offered - {(protocol, step, "pass") for protocol, step in STAGES}
    assert matrix_size() == len(STAGES) * len(REASONS) * 2 * 2 + 2 * len(REASONS)


@pytest.mark.parametrize("cell", FAILING_ALONE, ids=str)
async def test_faulty_hop_is_named_with_its_reason(
    cell: Cell, bot_api: BotApiStandIn, fault_proxy: FaultProxyFactory, proxy: ProxyFactory
) -> None:
    """Without a fallback, a broken handshake is a ProxyHopError naming the hop and the reason."""
    chain = chain_for(cell, fault_proxy, proxy)
    outcome = await request_get_me(chain, bot_api)
    assert len(bot_api.calls) <= 1
    error = outcome.error
    assert isinstance(error, ProxyHopError), f"{type(error).__name__}: {error}"
    named = (error.hop_number, error.hop_count, error.reason)
    assert named == (cell.position, 2, REASONS[cell.fault]), f"{named}: {error}"
    assert str(error).startswith(f"proxy hop {cell.position} of 2"), str(error)
    assert bot_api.calls == []
    assert_in_time(cell, outcome.elapsed, outcome.primary_error)


@pytest.mark.parametrize("cell", FAILING_WITH_FALLBACK, ids=str)
async def test_faulty_hop_is_replaced_by_the_fallback(
    cell: Cell, bot_api: BotApiStandIn, fault_proxy: FaultProxyFactory, proxy: ProxyFactory
) -> None:
    """With a fallback, a broken handshake at either hop sends the request through the fallback once."""
    chain = chain_for(cell, fault_proxy, proxy)
    outcome = await request_get_me(chain, bot_api)
    assert len(bot_api.calls) <= 1
    assert_served(outcome)
    assert chain.backup is not None
    assert chain.backup.destinations == [("127.0.0.1", bot_api.port)]
    assert len(bot_api.calls) == 1
    assert_in_time(cell, outcome.elapsed, outcome.primary_error)


@pytest.mark.parametrize("cell", SPLIT, ids=str)
async def test_answer_in_pieces_is_a_good_answer(
    cell: Cell, bot_api: BotApiStandIn, fault_proxy: FaultProxyFactory, proxy: ProxyFactory
) -> None:
    """A correct answer sent in small TCP segments works through the chain; no fallback is used."""
    chain = chain_for(cell, fault_proxy, proxy)
    outcome = await request_get_me(chain, bot_api)
    assert len(bot_api.calls) <= 1
    assert_served(outcome)
    if chain.backup is not None:
        assert chain.backup.destinations == [], "served by the fallback: the chain failed"
    first, second = chain.hops
    assert first.destinations == [("127.0.0.1", second.port)]
    assert second.destinations == [("127.0.0.1", bot_api.port)]
    assert len(bot_api.calls) == 1
    assert_in_time(cell, outcome.elapsed, outcome.primary_error)


# --- through a real aiogram Bot ------------------------------------------------------------------


@pytest.mark.parametrize("cell", AIOGRAM_FAILING, ids=str)
async def test_aiogram_names_the_faulty_hop(
    cell: Cell, bot_api: BotApiStandIn, fault_proxy: FaultProxyFactory, proxy: ProxyFactory
) -> None:
    """Bot.get_me() raises TelegramNetworkError saying which hop of the chain broke."""
    chain = chain_for(cell, fault_proxy, proxy)
    session = build_session_from_config(**chain.settings(bot_api))
    async with Bot(TOKEN, session=session) as bot:
        started = time.monotonic()
        with pytest.raises(TelegramNetworkError) as caught:
            await bot.get_me()
        elapsed = time.monotonic() - started
    assert "proxy hop 2 of 2" in str(caught.value)
    assert bot_api.calls == []
    assert_in_time(cell, elapsed, session.route_status()[0].last_error)


@pytest.mark.parametrize("cell", AIOGRAM_SERVED, ids=str)
async def test_aiogram_gets_the_user_despite_the_fault(
    cell: Cell, bot_api: BotApiStandIn, fault_proxy: FaultProxyFactory, proxy: ProxyFactory
) -> None:
    """Bot.get_me() returns the user through the fallback, or through a chain that answers in pieces."""
    chain = chain_for(cell, fault_proxy, proxy)
    session = build_session_from_config(**chain.settings(bot_api))
    async with Bot(TOKEN, session=session) as bot:
        started = time.monotonic()
        me = await bot.get_me()
        elapsed = time.monotonic() - started
    assert me.username == "standin_bot"
    if cell.fault == "split":
        assert chain.backup is None or chain.backup.destinations == [], "the chain failed"
        assert chain.faulty.destinations == [("127.0.0.1", bot_api.port)]
    else:
        assert chain.backup is not None
        assert chain.backup.destinations == [("127.0.0.1", bot_api.port)]
    assert len(bot_api.calls) == 1
    assert_in_time(cell, elapsed, session.route_status()[0].last_error)
