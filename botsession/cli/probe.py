"""``botsession probe``: walk a route hop by hop and say where it breaks.

Step k opens a tunnel through hops 1..k to the address that hop k must reach (the next hop, or
the target for the last one); a last step sends one HTTP request through the whole route. The
first failing step names the hop to blame and why. For an https hop the step also says what its
TLS session was: version, the certificate's subject, issuer and expiry, with a warning on stderr
when the certificate expires within ``EXPIRY_WARNING_DAYS``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TextIO
from urllib.parse import urlsplit

from ..config_schema import BotSessionConfig, ProxyHop, ProxyRoute
from ..errors import ProxyHopError
from ..net.connector import client_session
from ..net.handshake import ProxyTls
from ..net.routing import ConnectorSpec
from ..net.tunnel import open_tunnel
from ..redaction import redact_url

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


@dataclass(frozen=True)
class Diagnosis:
    """Which hop is to blame (1-based; ``hops + 1`` means the target) and why."""

    hop_number: int
    reason: str
    message: str


async def probe(
    config: BotSessionConfig, url: str, timeout: float, out: TextIO
) -> list[tuple[int, Diagnosis]]:
    """Probe every route of ``config`` towards ``url``, a line per step.

    Returns ``(route number, diagnosis)`` for each route that failed; empty if all is well.
    """
    routes: tuple[ProxyRoute | None, ...] = config.routes or (None,)
    failures = []
    for number, route in enumerate(routes, start=1):
        if len(routes) > 1:
            role = "primary" if number == 1 else "fallback"
            out.write(f"route {number} of {len(routes)} ({role})\n")
        diagnosis = await _probe_route(config, route, url, timeout, out)
        if diagnosis is not None:
            failures.append((number, diagnosis))
    return failures


async def _probe_route(
    config: BotSessionConfig, route: ProxyRoute | None, url: str, timeout: float, out: TextIO
) -> Diagnosis | None:
    hops = route.hops if route is not None else ()
    target = urlsplit(url)
    host = target.hostname or ""
    port = target.port or (443 if target.scheme == "https" else 80)
    steps = len(hops) + 1
    out.write(f"probing {_describe(route, redact_url(url))}\n")
    for number in range(1, len(hops) + 1):
        last = number == len(hops)
        reach = (host, port) if last else (hops[number].host, hops[number].port)
        where = f"{host}:{port}" if last else f"hop {number + 1} {hops[number].address}"
        _begin(out, f"[{number}/{steps}] hop {number} {hops[number - 1].label()} → {where}")
        started = time.perf_counter()
        try:
            tunnel = await open_tunnel(ProxyRoute(hops[:number]), *reach, timeout=timeout)
        except ProxyHopError as error:
            _end(out, f"FAILED after {_ms(started)}")
            return _diagnose(error, hops, number)
        tunnel.close()
        _end(out, f"ok {_ms(started)}")
        if hops[number - 1].tls and tunnel.proxy_tls:
            _report_tls(out, number, hops[number - 1], tunnel.proxy_tls[-1])
    return await _request(config, route, url, timeout, out)


async def _request(
    config: BotSessionConfig, route: ProxyRoute | None, url: str, timeout: float, out: TextIO
) -> Diagnosis | None:
    hops = route.hops if route is not None else ()
    steps = len(hops) + 1
    how = "through the route" if route is not None else "directly"
    shown = redact_url(url)  # a token in a Bot API URL, a password in its userinfo
    _begin(out, f"[{steps}/{steps}] GET {shown} {how}")
    started = time.perf_counter()
    # Only this route: the session's fallback logic must not hide which route works.
    spec = replace(
        ConnectorSpec.from_config(config),
        routes=(route,) if route else (),
        retry_primary_after=None,
    )
    try:
        async with (
            client_session(spec, timeout=timeout) as session,
            session.get(url, allow_redirects=False) as response,
        ):
            status = response.status
    except ProxyHopError as error:
        _end(out, f"FAILED after {_ms(started)}")
        return _diagnose(error, hops, len(hops))
    except Exception as error:
        _end(out, f"FAILED after {_ms(started)}")
        detail = redact_url(str(error)) or f"no answer within {timeout:g} s"
        return Diagnosis(len(hops) + 1, "request", f"the request to {shown} failed: {detail}")
    _end(out, f"HTTP {status} in {_ms(started)}")
    return None


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


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.0f} ms"
