"""OpenTelemetry: connect durations per hop, route switches and connect spans, recorded through
the API into the SDK's in-memory readers; nothing imported or recorded without the API."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from aiogram import Bot

from botsession import build_client_session
from botsession.net import routing

from .conftest import ProxyFactory
from .failover_support import UNHEDGED, Recorded, silent, until
from .faultproxy import FaultProxyFactory
from .servers import BotApiStandIn
from .support import PATIENT, SENTINEL, TOKEN, free_port, session_for

DURATION = "botsession.proxy.connect.duration"
SWITCHES = "botsession.route.switches"


def histogram(otel: Recorded) -> dict[tuple[Any, ...], tuple[int, float]]:
    """``(route, hop, scheme, error.type)`` → (count, sum) of the connect durations."""
    found: dict[tuple[Any, ...], tuple[int, float]] = {}
    for point in otel.points(DURATION):
        attributes = point.attributes
        key = (
            attributes["botsession.route.index"],
            attributes["botsession.hop.index"],
            attributes["botsession.proxy.scheme"],
            attributes.get("error.type"),
        )
        found[key] = (point.count, point.sum)
    return found


def all_attribute_values(otel: Recorded) -> list[str]:
    values = [str(v) for span in otel.spans() for v in (span.attributes or {}).values()]
    values += [str(span.status.description) for span in otel.spans()]
    for name in (DURATION, SWITCHES):
        values += [str(v) for point in otel.points(name) for v in point.attributes.values()]
    return values


async def test_each_hop_of_a_chain_records_its_connect_duration(
    bot_api: BotApiStandIn, proxy: ProxyFactory, otel: Recorded
) -> None:
    """A request through a two-hop chain records one duration per hop, with the route and hop
    index and the scheme, and one connect span with a child span per hop."""
    first, second = proxy("socks5"), proxy("http")
    async with Bot(TOKEN, session=session_for(bot_api, [first.url(), second.url()])) as bot:
        await bot.get_me()
    found = histogram(otel)
    assert set(found) == {(0, 0, "socks5", None), (0, 1, "http", None)}
    assert all(count == 1 and 0 < total < 1 for count, total in found.values())
    spans = otel.spans()
    [connect] = [span for span in spans if span.name == "botsession.proxy.connect"]
    hops = [span for span in spans if span.name == "botsession.proxy.hop"]
    assert [span.attributes["botsession.hop.index"] for span in hops] == [0, 1]
    assert all(span.parent.span_id == connect.context.span_id for span in hops)
    assert connect.attributes["botsession.route.index"] == 0
    assert connect.attributes["server.port"] == bot_api.port
    assert hops[0].start_time == connect.start_time
    assert hops[0].end_time <= hops[1].start_time <= hops[1].end_time <= connect.end_time
    assert connect.status.is_ok


async def test_refused_primary_records_the_error_type_and_a_switch(
    bot_api: BotApiStandIn, proxy: ProxyFactory, otel: Recorded
) -> None:
    """A refused primary records its hop with error.type refused, the fallback's hop without
    one, and one route switch (to route 1, from route 0, because it failed); the fallback's
    connect, started by the failure rather than by the hedge delay, is not marked hedged."""
    dead, backup = free_port(), proxy("socks4")
    session = session_for(bot_api, f"socks5://127.0.0.1:{dead}", fallback=[backup.url()])
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()
    found = histogram(otel)
    assert set(found) == {(0, 0, "socks5", "refused"), (1, 0, "socks4", None)}
    [switch] = otel.points(SWITCHES)
    assert switch.value == 1
    assert dict(switch.attributes) == {
        "botsession.route.index": 1,
        "botsession.route.previous_index": 0,
        "botsession.switch.reason": "failed",
    }
    [failed] = [
        s for s in otel.spans() if s.name == "botsession.proxy.connect" and not s.status.is_ok
    ]
    assert failed.attributes["error.type"] == "refused"
    assert "connection refused" in (failed.status.description or "")
    [fallback] = [
        s
        for s in otel.spans()
        if s.name == "botsession.proxy.connect" and s.attributes["botsession.route.index"] == 1
    ]
    assert "botsession.hedged" not in fallback.attributes


async def test_hedged_connect_records_the_cancelled_primary_and_a_hedged_switch(
    bot_api: BotApiStandIn, proxy: ProxyFactory, fault_proxy: FaultProxyFactory, otel: Recorded
) -> None:
    """A silent primary given up for the fallback records its hop as cancelled after the hedge
    delay; the switch is counted as hedged; the fallback's span is marked hedged."""
    primary, backup = silent(fault_proxy), proxy("socks5")
    session = session_for(bot_api, primary.url(), fallback=[backup.url()], fallback_hedge_after=0.2)
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()
    found = histogram(otel)
    assert set(found) == {(0, 0, "socks5", "cancelled"), (1, 0, "socks5", None)}
    count, waited = found[(0, 0, "socks5", "cancelled")]
    assert count == 1
    assert 0.2 <= waited < UNHEDGED / 2  # the hedge delay, not the connect timeout
    [switch] = otel.points(SWITCHES)
    assert switch.attributes["botsession.switch.reason"] == "hedged"
    connects = {
        span.attributes["botsession.route.index"]: span
        for span in otel.spans()
        if span.name == "botsession.proxy.connect"
    }
    assert connects[1].attributes["botsession.hedged"] is True
    assert "botsession.hedged" not in connects[0].attributes
    assert connects[0].attributes["error.type"] == "cancelled"
    assert connects[0].parent == connects[1].parent  # siblings under the request's context


async def test_connect_spans_join_the_request_trace_and_checks_start_their_own(
    bot_api: BotApiStandIn, proxy: ProxyFactory, otel: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connect spans are children of the span current when the request was made; a background
    check, started by that request's failure, is a root span marked as a health check; the
    return to the primary is a switch with reason recovered."""
    from opentelemetry import trace

    monkeypatch.setattr(routing, "FIRST_CHECK_AFTER", 0.05)
    bot_api.close_connections = True
    port, backup = free_port(), proxy("socks5")
    session = session_for(
        bot_api,
        f"socks5://127.0.0.1:{port}",
        fallback=[backup.url()],
        fallback_retry_primary_after=1.0,
    )
    async with Bot(TOKEN, session=session) as bot:
        with trace.get_tracer("test").start_as_current_span("handle update") as update:
            await bot.get_me()
        proxy("socks5", port=port)
        assert await until(lambda: session.route_status()[0].state == "active", PATIENT)
    connects = [span for span in otel.spans() if span.name == "botsession.proxy.connect"]
    checks = [span for span in connects if span.attributes.get("botsession.health_check")]
    requests = [span for span in connects if span not in checks]
    assert len(requests) == 2  # the refused primary, then the fallback
    assert all(span.parent.span_id == update.get_span_context().span_id for span in requests)
    assert checks
    assert all(span.parent is None for span in checks)
    assert checks[-1].status.is_ok
    reasons = sorted(
        point.attributes["botsession.switch.reason"] for point in otel.points(SWITCHES)
    )
    assert reasons == ["failed", "recovered"]


async def test_no_credentials_or_userinfo_in_any_attribute(
    bot_api: BotApiStandIn, proxy: ProxyFactory, otel: Recorded
) -> None:
    """Neither a password nor a user name (nor any user@host) appears in any recorded attribute
    or span status, failures included."""
    guarded = proxy("socks5", "alice-user", SENTINEL)
    wrong = f"socks5://alice-user:{SENTINEL}x@127.0.0.1:{guarded.port}"  # rejected password
    session = session_for(bot_api, wrong, fallback=[guarded.url()])
    async with Bot(TOKEN, session=session) as bot:
        await bot.get_me()
    values = all_attribute_values(otel)
    assert values
    assert not [v for v in values if SENTINEL in v or "alice-user" in v or "@" in v]
    found = histogram(otel)
    assert (0, 0, "socks5", "auth") in found


async def test_plain_session_records_too(
    bot_api: BotApiStandIn, proxy: ProxyFactory, otel: Recorded
) -> None:
    """build_client_session records the same metrics (the router is shared by every adapter)."""
    server = proxy("socks5")
    async with (
        build_client_session(proxy=server.url()) as client,
        client.post(f"{bot_api.base}/bot{TOKEN}/getMe") as response,
    ):
        assert response.status == 200
    assert set(histogram(otel)) == {(0, 0, "socks5", None)}


def run_python(code: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.splitlines()[-1]))


def test_without_the_api_nothing_is_imported_and_requests_work(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """With opentelemetry not importable, a request through a route works, telemetry is off and
    no opentelemetry module is loaded."""
    server = proxy("socks5")
    code = f"""
import asyncio, json, sys
sys.modules["opentelemetry"] = None  # as if it were not installed
from botsession import build_client_session, telemetry

async def main():
    async with build_client_session(proxy={server.url()!r}) as client:
        async with client.post({f"{bot_api.base}/bot{TOKEN}/getMe"!r}) as response:
            return response.status

status = asyncio.run(main())
loaded = [name for name, module in sys.modules.items() if name.startswith("opentelemetry") and module is not None]
print(json.dumps({{"status": status, "telemetry": telemetry.current() is not None, "loaded": loaded}}))
"""
    assert run_python(code) == {"status": 200, "telemetry": False, "loaded": []}


def test_import_botsession_does_not_import_opentelemetry() -> None:
    """Importing botsession and loading a configuration leave OpenTelemetry unimported (it is
    imported at the first connect)."""
    code = """
import json, sys
import botsession
botsession.load_config(proxy="socks5://127.0.0.1:1080")
print(json.dumps({"loaded": sorted(n for n in sys.modules if n.startswith("opentelemetry"))}))
"""
    assert run_python(code) == {"loaded": []}


def test_api_without_sdk_costs_a_few_calls_per_connect() -> None:
    """With the API installed but no SDK configured, reporting one attempt through a two-hop
    route (a duration per hop, three spans) makes no more than a few dozen function calls."""
    code = """
import json, sys
from botsession import load_config, telemetry
route = load_config(proxy=["socks5://127.0.0.1:1", "http://127.0.0.1:2"]).proxy
recorder = telemetry.current()
attempt = telemetry.Attempt(0, "api.telegram.org", 443)
attempt.hop_seconds[:] = [0.01, 0.02]
attempt.end()
recorder.attempt_ended(attempt, route)  # the first one looks the no-op instruments up
calls = 0
def count(frame, event, arg):
    global calls
    calls += event in ("call", "c_call")
sys.setprofile(count)
for _ in range(100):
    recorder.attempt_ended(attempt, route)
sys.setprofile(None)
print(json.dumps({"calls_per_attempt": calls / 100}))
"""
    # About 70 calls, a few microseconds; with an SDK recording it all, about 600.
    calls = run_python(code)["calls_per_attempt"]
    assert calls < 200, calls


async def test_histogram_buckets_suit_seconds(
    bot_api: BotApiStandIn, proxy: ProxyFactory, otel: Recorded
) -> None:
    """The duration histogram has second-scale buckets (5 ms to 30 s), not the SDK's default
    millisecond-scale ones."""
    server = proxy("socks5")
    async with Bot(TOKEN, session=session_for(bot_api, server.url())) as bot:
        await bot.get_me()
    [point] = otel.points(DURATION)
    assert point.explicit_bounds[0] == 0.005
    assert point.explicit_bounds[-1] == 30.0
    assert (point.count, point.bucket_counts[-1]) == (1, 0)  # a loopback hop: within them
