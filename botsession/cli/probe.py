"""``botsession probe``: walk a route hop by hop and say where it breaks.

Step k opens a tunnel through hops 1..k to the address that hop k must reach (the next hop, or
the target for the last one); a last step sends one HTTP request through the whole route. The
first failing step names the hop to blame and why. For an https hop the step also says what its
TLS session was: version, the certificate's subject, issuer and expiry, with a warning on stderr
when the certificate expires within ``EXPIRY_WARNING_DAYS``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TextIO, TypeVar
from urllib.parse import urlsplit

from ..config_schema import BotSessionConfig, ProxyHop, ProxyRoute
from ..errors import ProxyHopError, route_name
from ..net.connector import client_session
from ..net.handshake import ProxyTls
from ..net.routing import ConnectorSpec
from ..net.tunnel import open_tunnel
from ..redaction import redact_url, scrub_secrets, token_secrets

EXPIRY_WARNING_DAYS = 14
"""probe warns when an https hop's certificate expires within this many days."""

# Replies that mean "I could not reach the address you asked for" rather than "I refuse".
_UNREACHABLE = {
    "socks5": {3, 4, 5, 6},  # network/host unreachable, connection refused, TTL expired
    "socks4": {0x5B, 0x5C},  # "rejected or failed": SOCKS4 does not say which
    "socks4a": {0x5B, 0x5C},
    "http": {500, 502, 503, 504},
    "https": {500, 502, 503, 504},
}


SAMPLE_TOKEN = "1:" + "A" * 35
"""A bot token of the right shape that is no bot's: a Bot API server answers a request with it
"Unauthorized" (401), where anything else at that address answers 404."""


@dataclass(frozen=True)
class Diagnosis:
    """Which hop is to blame (1-based; ``hops + 1`` means the target) and why."""

    hop_number: int
    reason: str
    message: str


@dataclass
class Probed:
    """What a probe found: ``(route number, diagnosis)`` of each route that failed, and
    whether the API base answered as no Bot API server does (a 404 for a bot's method)."""

    failures: list[tuple[int, Diagnosis]] = field(default_factory=list)
    api_base_not_found: bool = False


async def probe(
    config: BotSessionConfig, url: str, timeout: float, out: TextIO, *, api_base: bool = False
) -> Probed:
    """Probe every route of ``config`` towards ``url``, a line per step (on a terminal, a
    step that waits shows every second how long it has waited).

    ``api_base``: ``url`` is the configured Bot API server's base, which a 404 calls in doubt.
    """
    routes: tuple[ProxyRoute | None, ...] = config.routes or (None,)
    prober = _Prober(config, url, timeout, out, api_base)
    for number, route in enumerate(routes, start=1):
        if len(routes) > 1:
            out.write(f"route {route_name(number - 1)}\n")
        diagnosis = await prober.route(route)
        if diagnosis is not None:
            prober.probed.failures.append((number, diagnosis))
    return prober.probed


@dataclass
class _Prober:
    """One probe's settings, where it writes, and what it found."""

    config: BotSessionConfig
    url: str
    timeout: float
    out: TextIO
    api_base: bool
    probed: Probed = field(default_factory=Probed)

    async def route(self, route: ProxyRoute | None) -> Diagnosis | None:
        out = self.out
        hops = route.hops if route is not None else ()
        target = urlsplit(self.url)
        host = target.hostname or ""
        port = target.port or (443 if target.scheme == "https" else 80)
        steps = len(hops) + 1
        out.write(f"probing {_describe(route, redact_url(self.url))}\n")
        for number in range(1, len(hops) + 1):
            last = number == len(hops)
            reach = (host, port) if last else (hops[number].host, hops[number].port)
            where = f"{host}:{port}" if last else f"hop {number + 1} {hops[number].address}"
            line = f"[{number}/{steps}] hop {number} {hops[number - 1].label()} → {where}"
            _begin(out, line)
            started = time.perf_counter()
            answered: list[float] = []  # each hop's time, as it answers
            opening = open_tunnel(
                ProxyRoute(hops[:number]), *reach, timeout=self.timeout, hop_seconds=answered
            )
            try:
                tunnel = await _ticking(out, line, opening, _next_hop(answered))
            except ProxyHopError as error:
                _end(out, f"FAILED after {_took(started)}")
                return _diagnose(error, hops, number)
            tunnel.close()
            _end(out, f"ok {_took(started)}")
            if hops[number - 1].tls and tunnel.proxy_tls:
                _report_tls(out, number, hops[number - 1], tunnel.proxy_tls[-1])
        return await self.request(route)

    async def request(self, route: ProxyRoute | None) -> Diagnosis | None:
        out, url = self.out, self.url
        hops = route.hops if route is not None else ()
        steps = len(hops) + 1
        how = "through the route" if route is not None else "directly"
        shown = redact_url(url)  # a token in a Bot API URL, a password in its userinfo
        line = f"[{steps}/{steps}] GET {shown} {how}"
        _begin(out, line)
        started = time.perf_counter()
        # Only this route: the session's fallback logic must not hide which route works.
        spec = replace(
            ConnectorSpec.from_config(self.config),
            routes=(route,) if route else (),
            retry_primary_after=None,
        )
        try:
            status, not_found = await _ticking(out, line, self.get(spec), lambda: "the answer")
        except ProxyHopError as error:
            _end(out, f"FAILED after {_took(started)}")
            return _diagnose(error, hops, len(hops))
        except Exception as error:
            _end(out, f"FAILED after {_took(started)}")
            # The URL may hold a token: masked where it is a Bot API URL, scrubbed wherever
            # else the error repeats it (percent-decoded, say).
            said = scrub_secrets(redact_url(str(error)), token_secrets(url))
            detail = said or f"no answer within {self.timeout:g} s"
            return Diagnosis(len(hops) + 1, "request", f"the request to {shown} failed: {detail}")
        _end(out, f"HTTP {status} in {_took(started)}")
        self.probed.api_base_not_found = self.probed.api_base_not_found or not_found
        return None

    async def get(self, spec: ConnectorSpec) -> tuple[int, bool]:
        """The status of GET ``url``, and whether ``url``, the API base, answered 404 where a
        Bot API server would not: a Bot API server answers its base with 404 too
        (telegram-bot-api does), so a bot's method with a token of no bot is asked for as well,
        which a Bot API server answers 401 (Unauthorized), anything else 404."""
        async with client_session(spec, timeout=self.timeout) as session:
            async with session.get(self.url, allow_redirects=False) as response:
                status = response.status
            if status != 404 or not self.api_base:
                return status, False
            method = f"{self.url.rstrip('/')}/bot{SAMPLE_TOKEN}/getMe"
            async with session.get(method, allow_redirects=False) as response:
                return status, response.status == 404


def _next_hop(answered: list[float]) -> Callable[[], str]:
    """``hop 2`` while hop 1 has answered (``answered`` is filled in as the hops answer)."""
    return lambda: f"hop {len(answered) + 1}"


def _diagnose(error: ProxyHopError, hops: tuple[ProxyHop, ...], step: int) -> Diagnosis:
    failing = hops[error.hop_number - 1]
    next_number = error.hop_number + 1
    next_name = (
        f"hop {next_number} of {len(hops)} ({hops[next_number - 1].label()})"
        if next_number <= len(hops)
        else "the target"
    )
    asked_next = error.hop_number == step
    if error.reason == "rejected" and asked_next and error.code in _UNREACHABLE[failing.scheme]:
        return Diagnosis(
            next_number,
            "unreachable",
            f"{next_name} is unreachable: hop {error.hop_number} could not connect to it "
            f"({error.__cause__ or error.detail})",
        )
    if error.reason in ("closed", "reset") and asked_next and next_number <= len(hops):
        return Diagnosis(
            error.hop_number,
            "protocol",
            f"hop {error.hop_number} of {len(hops)} ({error.hop}) broke off while connecting to "
            f"{next_name}: either that hop is unreachable from it or it refuses the request",
        )
    # The detail already says "connection refused", "rejected the credentials", ...
    why = {"timeout": "timed out: ", "protocol": "protocol error: "}.get(error.reason, "")
    message = f"hop {error.hop_number} of {error.hop_count} ({error.hop}): {why}{error.detail}"
    if error.reason == "auth":
        message = (
            f"the credentials were rejected at hop {error.hop_number} of {error.hop_count} "
            f"({error.hop}): {error.detail}"
        )
    return Diagnosis(error.hop_number, error.reason, message)


def _report_tls(out: TextIO, number: int, hop: ProxyHop, tls: ProxyTls) -> None:
    """The TLS session with an https hop, on the line under its step; a warning on stderr when
    its certificate expires soon."""
    checked = "verified" if tls.verified else "NOT verified (verify: false)"
    parts = [f"subject {tls.subject or '?'}", f"issuer {tls.issuer or '?'}"]
    if tls.not_after is not None:
        left = (tls.not_after - datetime.now(UTC)).total_seconds()
        when = f"{tls.not_after:%Y-%m-%d %H:%M} UTC"
        parts.append(f"expires {when} ({_in_days(left)})")
    out.write(f"      {tls.version} with {tls.server_hostname}, certificate {checked}: ")
    out.write("; ".join(parts) + "\n")
    out.flush()
    if tls.not_after is not None and left < EXPIRY_WARNING_DAYS * 86400:
        expires = "expires" if left >= 0 else "expired"
        print(
            f"warning: the TLS certificate of hop {number} ({hop.label()}) {expires} "
            f"{_in_days(left)} ({when}); renew it on the proxy",
            file=sys.stderr,
        )


def _in_days(seconds: float) -> str:
    days = int(abs(seconds) // 86400)
    span = f"{days} day{'s' if days != 1 else ''}" if days else "less than a day"
    return f"in {span}" if seconds >= 0 else f"{span} ago"


def _describe(route: ProxyRoute | None, url: str) -> str:
    if route is None:
        return f"client → {url} (direct)"
    return route.describe(url)


def _begin(out: TextIO, text: str) -> None:
    out.write(f"{text} … ")
    out.flush()


def _end(out: TextIO, text: str) -> None:
    out.write(f"{text}\n")
    out.flush()


def _took(started: float) -> str:
    """The time since ``started``: in ms below a second, else in seconds."""
    seconds = time.perf_counter() - started
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


TICK = 1.0
"""Seconds between the updates of a waiting step's line on a terminal."""
T = TypeVar("T")


async def _ticking(out: TextIO, line: str, work: Awaitable[T], waiting_for: Callable[[], str]) -> T:
    """The result of ``work``. On a terminal, while it runs, ``line`` says every second what
    is awaited and for how long (``… waiting for hop 2 … 3 s``), so that a silent hop does not
    look like a hung program; elsewhere (a file, a pipe) nothing is added."""
    isatty = getattr(out, "isatty", None)
    if not (callable(isatty) and isatty()):
        return await work
    task = asyncio.ensure_future(work)
    started = time.perf_counter()
    ticked = False
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=TICK)
            if not task.done():
                waited = time.perf_counter() - started
                # \r and "erase line": the line is written again, longer each time.
                out.write(f"\r\x1b[K{line} … waiting for {waiting_for()} … {waited:.0f} s")
                out.flush()
                ticked = True
    finally:
        task.cancel()  # done already, unless this was cancelled (Ctrl-C)
    if ticked:
        _begin(out, f"\r\x1b[K{line}")
    return task.result()
