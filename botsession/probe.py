"""``botsession probe``: walk a route hop by hop and say where it breaks.

Step k opens a tunnel through hops 1..k to the address that hop k must reach (the next hop, or
the target for the last one); a last step sends one HTTP request through the whole route. The
first failing step names the hop to blame and why.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import urlsplit

import aiohttp

from .config_schema import BotSessionConfig, ProxyHop, ProxyRoute
from .connector import ProxyHopError, client_session, open_tunnel
from .factory import connector_spec

# Replies that mean "I could not reach the address you asked for" rather than "I refuse".
_UNREACHABLE = {
    "socks5": {3, 4, 5, 6},  # network/host unreachable, connection refused, TTL expired
    "socks4": {0x5B, 0x5C},  # "rejected or failed": SOCKS4 does not say which
    "socks4a": {0x5B, 0x5C},
    "http": {500, 502, 503, 504},
}


@dataclass(frozen=True)
class Diagnosis:
    """Which hop is to blame (1-based; ``hops + 1`` means the target) and why."""

    hop_number: int
    reason: str
    message: str


async def probe(
    config: BotSessionConfig, url: str, timeout: float, out: TextIO
) -> Diagnosis | None:
    """Probe the route of ``config`` towards ``url``, a line per step; None if all is well."""
    route = config.proxy
    hops = route.hops if route is not None else ()
    target = urlsplit(url)
    host = target.hostname or ""
    port = target.port or (443 if target.scheme == "https" else 80)
    steps = len(hops) + 1
    out.write(f"probing {_describe(route, url)}\n")
    for number in range(1, len(hops) + 1):
        reach = (hops[number].host, hops[number].port) if number < len(hops) else (host, port)
        where = (
            f"hop {number + 1} {hops[number].address}" if number < len(hops) else f"{host}:{port}"
        )
        _begin(out, f"[{number}/{steps}] hop {number} {hops[number - 1].label()} → {where}")
        started = time.perf_counter()
        try:
            stream, _attempt = await open_tunnel(ProxyRoute(hops[:number]), *reach, timeout)
        except ProxyHopError as error:
            _end(out, f"FAILED after {_ms(started)}")
            return _diagnose(error, hops, number)
        await stream.close()
        _end(out, f"ok {_ms(started)}")
    return await _request(config, url, timeout, steps, out)


async def _request(
    config: BotSessionConfig, url: str, timeout: float, steps: int, out: TextIO
) -> Diagnosis | None:
    how = "through the route" if config.proxy is not None else "directly"
    _begin(out, f"[{steps}/{steps}] GET {url} {how}")
    started = time.perf_counter()
    hop_count = steps - 1
    try:
        async with (
            client_session(connector_spec(config), timeout=timeout) as session,
            session.get(url, allow_redirects=False) as response,
        ):
            status = response.status
    except ProxyHopError as error:
        _end(out, f"FAILED after {_ms(started)}")
        return _diagnose(error, config.proxy.hops if config.proxy else (), hop_count)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
        _end(out, f"FAILED after {_ms(started)}")
        detail = str(error) or f"no answer within {timeout:g} s"
        return Diagnosis(hop_count + 1, "request", f"the request to {url} failed: {detail}")
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
    if error.reason == "protocol" and asked_next and next_number <= len(hops):
        return Diagnosis(
            error.hop_number,
            "protocol",
            f"hop {error.hop_number} of {len(hops)} ({error.hop}) broke off while connecting to "
            f"{next_name}: either that hop is unreachable from it or it refuses the request",
        )
    why = {
        "refused": "connection refused",
        "unreachable": "cannot connect",
        "timeout": "timed out",
        "auth": "credentials rejected",
        "rejected": "request rejected",
        "protocol": "protocol error",
    }[error.reason]
    message = f"hop {error.hop_number} of {error.hop_count} ({error.hop}): {why} — {error.detail}"
    if error.reason == "auth":
        message = (
            f"the credentials were rejected at hop {error.hop_number} of {error.hop_count} "
            f"({error.hop}): {error.detail}"
        )
    return Diagnosis(error.hop_number, error.reason, message)


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
