"""Shared fixtures: the background server loop, the stand-in Bot API, in-process proxies."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from .failover_support import Recorded, recorded, script_tunnels
from .faultproxy import (
    FAULT_AUTH,
    Fault,
    FaultProxy,
    FaultProxyFactory,
    HopKind,
    Protocol,
    Step,
    TlsFront,
)
from .mtproto_dc import MTProtoDC
from .servers import BackgroundLoop, BotApiStandIn, InProcessProxy, SilentServer
from .support import LOOPBACK
from .tls_relay import TlsRelay, server_context


@pytest.fixture(scope="session", autouse=True)
def _private_files() -> Iterator[None]:
    """Files the tests write are private (0600), as config files with passwords should be.

    botsession warns about a readable config file that holds a plaintext password; the tests
    that check that warning make their file readable on purpose.
    """
    previous = os.umask(0o077)
    yield
    os.umask(previous)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts without BOT_* variables, in an empty working directory."""
    for name in list(os.environ):
        if name.upper().startswith("BOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def background() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def _bot_api_server(background: BackgroundLoop) -> Iterator[BotApiStandIn]:
    server = BotApiStandIn(background).start()
    yield server
    server.stop()


@pytest.fixture
def bot_api(_bot_api_server: BotApiStandIn) -> BotApiStandIn:
    """The stand-in Bot API server (plain HTTP), with no calls recorded yet."""
    _bot_api_server.reset()
    return _bot_api_server


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def _tls_bot_api_server(background: BackgroundLoop, ca: trustme.CA) -> Iterator[BotApiStandIn]:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = BotApiStandIn(background, tls=context).start()
    yield server
    server.stop()


@pytest.fixture
def tls_bot_api(_tls_bot_api_server: BotApiStandIn) -> BotApiStandIn:
    """The stand-in Bot API over HTTPS, with a certificate from the test CA only."""
    _tls_bot_api_server.reset()
    return _tls_bot_api_server


ProxyFactory = Callable[..., InProcessProxy]


@pytest.fixture
def proxy(background: BackgroundLoop) -> Iterator[ProxyFactory]:
    """Start in-process proxies: ``proxy("socks5", username=..., password=...)``."""
    started: list[InProcessProxy] = []

    def start(
        kind: str,
        username: str | None = None,
        password: str | None = None,
        port: int = 0,
        host: str = LOOPBACK,
    ) -> InProcessProxy:
        server = InProcessProxy(background, kind, username, password, port, host).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def fault_proxy(
    background: BackgroundLoop, ca: trustme.CA, ca_file: Path
) -> Iterator[FaultProxyFactory]:
    """Start fault-injection proxies (tests/faultproxy.py): ``fault_proxy("socks5",
    step="auth", fault="reset")``; ``fault_proxy("https", fault=...)`` puts a faulty http proxy
    behind TLS."""
    started: list[FaultProxy] = []
    relays: list[TlsRelay] = []

    def start(kind: HopKind, step: Step = "reply", fault: Fault = "pass") -> FaultProxy | TlsFront:
        username, password = FAULT_AUTH if step == "auth" else (None, None)
        inner: Protocol = "http" if kind == "https" else kind
        server = FaultProxy(background, inner, step, fault, username, password).start()
        started.append(server)
        if kind != "https":
            return server
        relays.append(TlsRelay(background, server.port, server_context(ca)).start())
        return TlsFront(server, relays[-1], ca_file)

    yield start
    for relay in relays:
        relay.stop()
    for server in started:
        server.stop()
    assert [error for server in started for error in server.errors] == []


@pytest.fixture
def silent_server(background: BackgroundLoop) -> Iterator[SilentServer]:
    """A server that accepts connections and never answers."""
    server = SilentServer(background).start()
    yield server
    server.stop()


@pytest.fixture
def scripted_tunnels(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """open_tunnel replaced by a script (``failover_support.script_tunnels``)."""
    return script_tunnels(monkeypatch)


@pytest.fixture
def otel() -> Recorded:
    """The SDK's in-memory metric reader and span exporter, emptied for this test."""
    return recorded()


@pytest.fixture
def dc(background: BackgroundLoop) -> Iterator[MTProtoDC]:
    """A stand-in MTProto data center that hangs up after the first frame."""
    server = MTProtoDC(background).start()
    yield server
    server.stop()


@pytest.fixture
def silent_dc(background: BackgroundLoop) -> Iterator[MTProtoDC]:
    """A stand-in MTProto data center that keeps each connection open, silent, after the
    first frame."""
    server = MTProtoDC(background, hang_up=False).start()
    yield server
    server.stop()
