"""Which names this machine resolves, for every scheme and chain shape, recorded at getaddrinfo.

Every ``getaddrinfo`` call in the process is recorded; the ones made by the test servers (which
run in threads named ``test-servers``) are set aside, so what remains is what the client looked
up. Names under ``.invalid`` (RFC 2606: they never resolve) fail at the recorder instead of
being sent to a DNS server, which would be a network target outside loopback.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from botsession import BotSessionWarning, ProxyHopError, build_client_session

from .conftest import ProxyFactory
from .servers import SERVER_THREADS, BackgroundLoop, BotApiStandIn, InProcessProxy
from .support import TOKEN

Lookup = tuple[str, int]


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[Lookup]:
    """Every name the client (not the test servers) resolves, with the port asked for."""
    recorded: list[Lookup] = []
    real = socket.getaddrinfo

    def recording(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if not threading.current_thread().name.startswith(SERVER_THREADS):
            recorded.append((str(host), int(port or 0)))
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    return recorded


@pytest.fixture
def dual_stack_api(background: BackgroundLoop) -> Iterator[BotApiStandIn]:
    """A stand-in Bot API reachable as ``localhost`` whichever address that name gives first."""
    server = BotApiStandIn(background, dual_stack=True).start()
    yield server
    server.stop()


@dataclass(frozen=True)
class Hop:
    scheme: str  # socks4, socks4a, socks5, socks5-local (rdns off), http
    by_name: bool

    @property
    def resolves_here(self) -> bool:
        return self.scheme in ("socks4", "socks5-local")

    def server_kind(self) -> str:
        return {"socks4a": "socks4", "socks5-local": "socks5"}.get(self.scheme, self.scheme)

    def form(self, port: int) -> Any:
        host = "localhost" if self.by_name else "127.0.0.1"
        if self.scheme == "socks5-local":
            return {"url": f"socks5://{host}:{port}", "rdns": False}
        return f"{self.scheme}://{host}:{port}"


def expected_lookups(hops: list[Hop], ports: list[int], api_port: int) -> list[Lookup]:
    """The rule docs/configuration.md states: hop 1's name, the next name after each hop that resolves
    here (socks4, socks5 with rdns off), and the Bot API host after such a last hop."""
    names = [
        ("localhost" if hop.by_name else None, port) for hop, port in zip(hops, ports, strict=True)
    ]
    names.append(("localhost", api_port))
    expected = []
    if names[0][0] is not None:
        expected.append(("localhost", ports[0]))
    for index, hop in enumerate(hops):
        name, port = names[index + 1]
        if hop.resolves_here and name is not None:
            expected.append((name, port))
    return expected


SHAPES: list[list[Hop]] = [
    [Hop("socks5", True)],
    [Hop("socks5-local", True)],
    [Hop("socks4", True)],
    [Hop("socks4a", True)],
    [Hop("http", True)],
    [Hop("socks5", False)],
    [Hop("socks4", False)],
    [Hop("socks5", True), Hop("socks5", True)],
    [Hop("socks4", False), Hop("socks5", True)],
    [Hop("socks5-local", True), Hop("http", True)],
    [Hop("socks4", False), Hop("socks4a", True)],
    [Hop("socks4a", False), Hop("socks4", True)],
    [Hop("http", True), Hop("socks5-local", False), Hop("socks5", True)],
    [Hop("socks5", False), Hop("http", False), Hop("socks4", False)],
]


def shape_id(hops: list[Hop]) -> str:
    return "→".join(f"{hop.scheme}{'(name)' if hop.by_name else '(ip)'}" for hop in hops)


@pytest.mark.parametrize("hops", SHAPES, ids=shape_id)
async def test_names_resolved_on_this_machine(
    hops: list[Hop],
    lookups: list[Lookup],
    dual_stack_api: BotApiStandIn,
    proxy: ProxyFactory,
) -> None:
    """The client looks up exactly hop 1's name, the names after local-DNS hops, and the Bot API
    host after a local-DNS last hop; every other name is resolved by a proxy."""
    servers: list[InProcessProxy] = [
        proxy(hop.server_kind(), host="localhost" if hop.by_name else "127.0.0.1") for hop in hops
    ]
    ports = [server.port for server in servers]
    base = f"http://localhost:{dual_stack_api.port}"
    route = [hop.form(port) for hop, port in zip(hops, ports, strict=True)]
    leaks_a_hop_name = any(a.resolves_here and b.by_name for a, b in itertools.pairwise(hops))
    with warns_of_local_lookups(leaks_a_hop_name):
        client = build_client_session(proxy=route, api={"base": base})
    async with client:
        lookups.clear()
        async with client.get(f"{base}/bot{TOKEN}/getMe") as response:
            assert response.status == 200
    assert lookups == expected_lookups(hops, ports, dual_stack_api.port)
    assert len(dual_stack_api.calls) == 1


async def test_a_direct_ip_route_resolves_nothing(
    lookups: list[Lookup], bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A chain of IP addresses to an IP address needs no name lookup at all."""
    first, second = proxy("socks4"), proxy("socks5")
    route = [f"socks4://127.0.0.1:{first.port}", f"socks5://127.0.0.1:{second.port}"]
    async with build_client_session(proxy=route, api={"base": bot_api.base}) as client:
        lookups.clear()
        async with client.get(f"{bot_api.base}/bot{TOKEN}/getMe") as response:
            assert response.status == 200
    assert lookups == []


LookupFailure = Callable[[int], list[Any]]


def warns_of_local_lookups(expected: bool) -> contextlib.AbstractContextManager[Any]:
    """A route that makes this machine resolve a later hop's name warns at load."""
    if expected:
        return pytest.warns(BotSessionWarning, match="resolves the name of hop")
    return contextlib.nullcontext()


@pytest.mark.parametrize(
    ("route", "number", "message"),
    [
        (
            lambda port: ["socks5://proxy.invalid:1080"],
            1,
            "cannot resolve its name proxy.invalid on this machine",
        ),
        (
            lambda port: [f"socks4://127.0.0.1:{port}", "socks5://relay.invalid:1080"],
            2,
            "the lookup of hop 2's address relay.invalid failed on this machine (hop 1 is "
            "socks4, so this machine resolves the name it connects to)",
        ),
        (
            lambda port: [
                {"url": f"socks5://127.0.0.1:{port}", "rdns": False},
                "http://relay.invalid:3128",
            ],
            2,
            "the lookup of hop 2's address relay.invalid failed on this machine (hop 1 is "
            "socks5 with rdns off",
        ),
    ],
    ids=["hop-1-name", "after-socks4", "after-socks5-local"],
)
async def test_a_failed_local_lookup_names_the_hop_whose_address_it_was(  # noqa: PLR0917
    route: LookupFailure,
    number: int,
    message: str,
    lookups: list[Lookup],
    bot_api: BotApiStandIn,
    proxy: ProxyFactory,
) -> None:
    """A name this machine cannot resolve is reported as that hop's failed lookup (reason dns)."""
    first = proxy("socks5").port
    with warns_of_local_lookups(number > 1):
        client = build_client_session(proxy=route(first), api={"base": bot_api.base})
    async with client:
        with pytest.raises(ProxyHopError) as caught:
            await client.get(f"{bot_api.base}/bot{TOKEN}/getMe")
    assert (caught.value.hop_number, caught.value.reason) == (number, "dns")
    assert message in str(caught.value)
    assert bot_api.calls == []


async def test_a_failed_lookup_of_the_bot_api_host_says_so(
    lookups: list[Lookup], bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """After a socks4 last hop, an unresolvable Bot API host is this machine's lookup failing."""
    last = proxy("socks4")
    async with build_client_session(
        proxy=f"socks4://127.0.0.1:{last.port}", api={"base": "http://api.invalid"}
    ) as client:
        with pytest.raises(ProxyHopError) as caught:
            await client.get(f"http://api.invalid/bot{TOKEN}/getMe")
    assert (caught.value.hop_number, caught.value.reason) == (1, "dns")
    assert "the lookup of api.invalid failed on this machine (hop 1 is socks4" in str(caught.value)
    assert ("api.invalid", 80) in lookups
