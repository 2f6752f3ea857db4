"""The daemon helpers start real proxies whose logs prove which hops were used."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from python_socks import ProxyError
from python_socks.async_.asyncio.v2 import Proxy as AsyncProxy
from python_socks.sync import Proxy

from . import daemons

CONNECT_TIMEOUT = 5.0


class _PongHandler(socketserver.StreamRequestHandler):
    timeout = CONNECT_TIMEOUT  # a stuck client must not hang the server thread

    def handle(self) -> None:
        line = self.rfile.readline()
        self.wfile.write(b"pong " + line)


class _PongServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def pong_port() -> Iterator[int]:
    """A loopback TCP server answering each line with ``pong <line>``; yields its port."""
    server = _PongServer((daemons.LOOPBACK, 0), _PongHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=CONNECT_TIMEOUT)


def _exchange(url: str, host: str, port: int, *, rdns: bool | None = None) -> bytes:
    """Send one line through the proxy at ``url`` and return the reply line."""
    sock = Proxy.from_url(url, rdns=rdns).connect(host, port, timeout=CONNECT_TIMEOUT)
    with sock, sock.makefile("rb") as reader:
        sock.settimeout(CONNECT_TIMEOUT)
        sock.sendall(b"ping\n")
        return reader.readline()


def _accepts_connections(port: int) -> bool:
    try:
        socket.create_connection((daemons.LOOPBACK, port), timeout=1).close()
    except ConnectionRefusedError:
        return False
    return True


def _dante_worker_pids(dante: daemons.RunningProxy) -> set[int]:
    """Pids of the forked Dante children that logged something (not the mother process)."""
    logged = {int(pid) for pid in re.findall(r"danted\[(\d+)\]", dante.log_text())}
    return logged - set(dante.process_groups)


def _connect_without_credentials(proxy: daemons.RunningProxy, port: int) -> bytes:
    """Status line of a CONNECT request that carries no Proxy-Authorization."""
    request = f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    with (
        socket.create_connection((proxy.host, proxy.port), timeout=CONNECT_TIMEOUT) as sock,
        sock.makefile("rb") as reader,
    ):
        sock.sendall(request.encode())
        return reader.readline()


# --------------------------------------------------------------------------- parsers


def test_parse_danted_log_keeps_only_established_connects() -> None:
    """Dante's parser reports opened sessions, not accepts, refusals or blocked SOCKS4a."""
    log = (
        "Nov 29 16:57:21 (1795971441.975078) danted[4468]: info: pass(1): tcp/accept [: "
        "127.0.0.1.54862 127.0.0.1.21080\n"
        "Nov 29 16:57:21 (1795971441.979335) danted[4485]: info: pass(1): tcp/connect [: "
        "127.0.0.1.54862 127.0.0.1.21080 -> 127.0.0.1.50093 127.0.0.1.29999\n"
        "Nov 29 16:57:22 (1795971442.208044) danted[4469]: info: block(1): tcp/connect ]: "
        "127.0.0.1.54884 127.0.0.1.21080 -> 127.0.0.1.49763 0.0.0.1.29999: connect(2) to "
        "0.0.0.1.29999 from 127.0.0.1.49763 failed: Invalid argument\n"
        "Nov 29 16:57:28 (1795971448.936299) danted[4485]: info: pass(1): tcp/connect ]: "
        "0 -> 127.0.0.1.47396 127.0.0.1.21080 -> 0, 0 -> 127.0.0.1.56355 127.0.0.1.29998 -> 0: "
        "remote peer error (Connection refused).  Session duration: 0s\n"
        "Nov 29 16:57:29 (1795971449.000000) danted[4485]: info: pass(1): tcp/connect [: "
        "127.0.0.1.54870 127.0.0.1.21080 -> 127.0.0.1.55831 127.0.0.1.3"  # still being written
    )
    assert daemons.parse_danted_log(log) == [("127.0.0.1", 29999)]


def test_parse_microsocks_log_reads_connected_lines() -> None:
    """microsocks' parser reports the host:port of each ``connected to`` line."""
    log = (
        "client[4] 127.0.0.1: connected to 127.0.0.1:29999\n"
        "client[5] 127.0.0.1: connected to localhost:29998\n"
    )
    assert daemons.parse_microsocks_log(log) == [("127.0.0.1", 29999), ("localhost", 29998)]


def test_parse_tinyproxy_log_pairs_opening_with_established() -> None:
    """tinyproxy's parser takes the port from ``opensock`` and needs an ``Established`` line."""
    log = (
        "CONNECT   Nov 29 16:57:53.795 [4764]: Request (file descriptor 5): "
        "CONNECT 127.0.0.1:29999 HTTP/1.1\n"
        "INFO      Nov 29 16:57:53.796 [4764]: opensock: opening connection to 127.0.0.1:29999\n"
        "INFO      Nov 29 16:57:53.796 [4764]: opensock: getaddrinfo returned for 127.0.0.1:29999\n"
        'CONNECT   Nov 29 16:57:53.796 [4764]: Established connection to host "127.0.0.1" '
        "using file descriptor 6.\n"
        "INFO      Nov 29 16:57:54.106 [4764]: opensock: opening connection to localhost:29998\n"
        "ERROR     Nov 29 16:57:54.108 [4764]: opensock: Could not establish a connection to "
        "localhost:29998\n"
    )
    assert daemons.parse_tinyproxy_log(log) == [("127.0.0.1", 29999)]


def test_parse_ssh_log_needs_open_confirm() -> None:
    """The ssh parser reports a SOCKS target only once sshd confirmed the channel."""
    log = (
        "debug2: channel 1: dynamic request: socks5 host 127.0.0.1 port 29999 command 1\n"
        "debug2: channel 1: open confirm rwindow 2097152 rmax 32768\n"
        "debug2: channel 1: dynamic request: socks5 host localhost port 29998 command 1\n"
        "channel 1: open failed: connect failed: Connection refused\n"
        "debug2: channel 2: dynamic request: socks4 host localhost port 29997 command 1\n"
        "debug2: channel 2: open confirm rwindow 2097152 rmax 32768\n"
    )
    assert daemons.parse_ssh_log(log) == [("127.0.0.1", 29999), ("localhost", 29997)]


def test_parse_sshd_forked_children() -> None:
    """The sshd parser finds the pid of each per-connection process the listener forked."""
    log = (
        "Server listening on 127.0.0.1 port 42222.\n"
        "debug1: Forked child 32612.\n"
        'Connection from 127.0.0.1 port 59552 on 127.0.0.1 port 42222 rdomain ""\n'
        "debug1: Forked child 32701.\n"
        "debug1: Forked child 3270"  # still being written
    )
    assert daemons.parse_sshd_forked_children(log) == [32612, 32701]


@pytest.mark.parametrize(
    ("value", "is_ci"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("TRUE", True),
        ("woodpecker", True),
        ("", False),
        ("0", False),
        ("false", False),
        ("False", False),
    ],
)
def test_any_non_empty_ci_other_than_0_or_false_is_ci(
    value: str, is_ci: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI=1 (or any other non-empty value but 0/false) makes the daemon suite mandatory."""
    monkeypatch.setenv("CI", value)
    assert daemons.under_ci() is is_ci


def test_a_missing_daemon_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under CI a missing binary is a test failure, never a silent skip."""
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="no-such-daemon not found"):
        daemons.require_binary("no-such-daemon")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="no-such-daemon not found"):
        daemons.require_binary("no-such-daemon")


def test_url_percent_encodes_credentials() -> None:
    """``url`` percent-encodes credentials and can leave them out."""
    proxy = daemons.RunningProxy("microsocks", "127.0.0.1", 1080, "us er", "p@ss:w/d", Path("x"))
    assert proxy.url("socks5") == "socks5://us%20er:p%40ss%3Aw%2Fd@127.0.0.1:1080"
    assert proxy.url("socks5", credentials=False) == "socks5://127.0.0.1:1080"


# --------------------------------------------------------------------------- real daemons


@pytest.mark.daemons
def test_danted_socks5_logs_destination(tmp_path: Path, pong_port: int) -> None:
    """Dante relays SOCKS5 and its log names the target port."""
    with daemons.danted(tmp_path) as proxy:
        assert _exchange(proxy.url("socks5"), "127.0.0.1", pong_port) == b"pong ping\n"
        assert proxy.wait_for_destination(pong_port)
        assert proxy.destinations() == [("127.0.0.1", pong_port)]


@pytest.mark.daemons
def test_danted_plain_socks4_with_client_side_resolution(tmp_path: Path, pong_port: int) -> None:
    """Dante accepts plain SOCKS4 when the client resolves "localhost" itself."""
    with daemons.danted(tmp_path) as proxy:
        reply = _exchange(proxy.url("socks4"), "localhost", pong_port, rdns=False)
        assert reply == b"pong ping\n"
        assert proxy.wait_for_destination(pong_port)


@pytest.mark.daemons
def test_danted_rejects_socks4a(tmp_path: Path, pong_port: int) -> None:
    """Dante rejects SOCKS4a (a hostname sent for the proxy to resolve)."""
    with daemons.danted(tmp_path) as proxy:
        with pytest.raises(ProxyError, match="rejected"):
            _exchange(proxy.url("socks4"), "localhost", pong_port, rdns=True)
        assert proxy.destinations() == []


@pytest.mark.daemons
def test_microsocks_authenticates_and_logs_destination(tmp_path: Path, pong_port: int) -> None:
    """microsocks relays for the right password, percent-decoded from the URL."""
    with daemons.microsocks(tmp_path, "alice", "s3cr:t@/%") as proxy:
        assert _exchange(proxy.url("socks5"), "127.0.0.1", pong_port) == b"pong ping\n"
        assert proxy.wait_for_destination(pong_port)
        assert proxy.destinations() == [("127.0.0.1", pong_port)]


@pytest.mark.daemons
def test_microsocks_rejects_wrong_password(tmp_path: Path, pong_port: int) -> None:
    """microsocks refuses a wrong password and connects nowhere."""
    with daemons.microsocks(tmp_path, "alice", "right") as proxy:
        wrong = f"socks5://alice:wrong@{proxy.host}:{proxy.port}"
        with pytest.raises(ProxyError, match="authentication failure"):
            _exchange(wrong, "127.0.0.1", pong_port)
        assert proxy.destinations() == []


@pytest.mark.daemons
def test_tinyproxy_connects_to_high_port(tmp_path: Path, pong_port: int) -> None:
    """tinyproxy allows CONNECT with BasicAuth to an arbitrary high port and logs it."""
    with daemons.tinyproxy(tmp_path, "alice", "s3cr-t.9") as proxy:
        assert _exchange(proxy.url("http"), "localhost", pong_port) == b"pong ping\n"
        assert proxy.wait_for_destination(pong_port)
        assert proxy.destinations() == [("localhost", pong_port)]


@pytest.mark.daemons
def test_tinyproxy_rejects_wrong_or_missing_credentials(tmp_path: Path, pong_port: int) -> None:
    """tinyproxy answers 401 to a wrong password and 407 to missing credentials."""
    with daemons.tinyproxy(tmp_path, "alice", "right") as proxy:
        wrong = f"http://alice:wrong@{proxy.host}:{proxy.port}"
        with pytest.raises(ProxyError, match="401"):
            _exchange(wrong, "127.0.0.1", pong_port)
        assert _connect_without_credentials(proxy, pong_port).startswith(b"HTTP/1.0 407 ")
        assert proxy.destinations() == []


def test_tinyproxy_refuses_credentials_its_config_cannot_hold(tmp_path: Path) -> None:
    """tinyproxy credentials outside [-A-Za-z0-9._] raise before anything starts."""
    with pytest.raises(ValueError, match="BasicAuth"), daemons.tinyproxy(tmp_path, "a", "p@ss"):
        pass


@pytest.mark.daemons
def test_ssh_socks5_and_socks4a(tmp_path: Path, pong_port: int) -> None:
    """``ssh -D`` relays SOCKS5 and SOCKS4a, and its log names both targets."""
    with daemons.ssh_socks(tmp_path) as proxy:
        assert _exchange(proxy.url("socks5"), "127.0.0.1", pong_port) == b"pong ping\n"
        reply = _exchange(proxy.url("socks4"), "localhost", pong_port, rdns=True)
        assert reply == b"pong ping\n"
        assert proxy.wait_for_destination(pong_port)
        assert proxy.destinations() == [("127.0.0.1", pong_port), ("localhost", pong_port)]


@pytest.mark.daemons
def test_failed_connect_is_not_a_destination(tmp_path: Path) -> None:
    """A refused outgoing connection is not reported as a destination."""
    closed_port = daemons.free_port()
    with daemons.ssh_socks(tmp_path / "ssh") as ssh, daemons.danted(tmp_path / "dante") as dante:
        for proxy in (ssh, dante):
            with pytest.raises(ProxyError):
                _exchange(proxy.url("socks5"), "127.0.0.1", closed_port)
            assert not proxy.wait_for_destination(closed_port, timeout=0.2)


@pytest.mark.daemons
def test_processes_are_gone_after_exit(tmp_path: Path, pong_port: int) -> None:
    """Leaving the context managers empties every process group, forked children included."""
    with contextlib.ExitStack() as stack:
        proxies = [
            stack.enter_context(daemons.danted(tmp_path / "dante")),
            stack.enter_context(daemons.microsocks(tmp_path / "micro", "u", "p")),
            stack.enter_context(daemons.tinyproxy(tmp_path / "tiny", "u", "p")),
            stack.enter_context(daemons.ssh_socks(tmp_path / "ssh")),
        ]
        dante, ssh = proxies[0], proxies[3]
        # A relayed connection makes Dante's forked children log their pids: they share the
        # mother's group, so emptying the group is what stops them.
        assert _exchange(dante.url("socks5"), "127.0.0.1", pong_port) == b"pong ping\n"
        assert dante.wait_for_destination(pong_port)
        workers = _dante_worker_pids(dante)
        assert workers
        assert {os.getpgid(pid) for pid in workers} == set(dante.process_groups)
        # ssh -D: the ssh client, sshd, and sshd's process for the connection in its own session.
        assert len(set(ssh.process_groups)) == 3
        groups = [group for proxy in proxies for group in proxy.process_groups]
        ports = [port for proxy in proxies for port in proxy.listening_ports]
        assert len(ports) == 5
        assert all(daemons.group_alive(group) for group in groups)
        assert all(_accepts_connections(port) for port in ports)
    assert [group for group in groups if daemons.group_alive(group)] == []
    assert [port for port in ports if _accepts_connections(port)] == []


@pytest.mark.daemons
def test_processes_are_gone_after_a_failing_test(tmp_path: Path) -> None:
    """An exception inside the with-block still empties the daemons' process groups."""
    groups: list[int] = []
    ports: list[int] = []

    def fail_inside() -> None:
        with (
            daemons.danted(tmp_path / "dante") as dante,
            daemons.ssh_socks(tmp_path / "ssh") as ssh,
        ):
            for proxy in (dante, ssh):
                groups.extend(proxy.process_groups)
                ports.extend(proxy.listening_ports)
            assert all(daemons.group_alive(group) for group in groups)
            raise RuntimeError("test body failed")

    with pytest.raises(RuntimeError, match="test body failed"):
        fail_inside()
    assert len(groups) == 4
    assert len(ports) == 3
    assert [group for group in groups if daemons.group_alive(group)] == []
    assert [port for port in ports if _accepts_connections(port)] == []


def test_stop_kills_group_members_that_ignore_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child that ignores SIGTERM and outlives its parent is SIGKILLed with the group."""
    monkeypatch.setattr(daemons, "STOP_TIMEOUT", 0.5)
    ready = tmp_path / "ready"
    # The shell leader dies of SIGTERM; its child ignores SIGTERM, as does its exec'd sleep.
    script = f"(trap '' TERM; touch '{ready}'; exec sleep 60) & wait"
    process = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists()
    finally:
        daemons._stop(process)
    assert process.returncode == -signal.SIGTERM
    assert not daemons.group_alive(process.pid)


@pytest.mark.daemons
def test_startup_failure_reports_the_daemon_output(tmp_path: Path) -> None:
    """A daemon that dies on startup raises DaemonError quoting its output."""
    binary = daemons.require_binary("microsocks")
    log = tmp_path / "out.log"
    with (
        pytest.raises(daemons.DaemonError, match=r"(?s)exited with status .*usage: microsocks"),
        daemons._serve(  # the shared start-up path, fed a command that exits at once
            "microsocks", lambda _port: [binary, "-h"], stdout_path=log, logs=[log]
        ),
    ):
        pass


@pytest.mark.daemons
@pytest.mark.asyncio
async def test_four_hop_chain_uses_every_hop(
    tmp_path_factory: pytest.TempPathFactory, pong_port: int
) -> None:
    """danted -> microsocks -> tinyproxy -> ssh -D -> server, each hop seen in its log."""
    base = tmp_path_factory.mktemp("chain")
    with (
        daemons.danted(base / "dante") as dante,
        daemons.microsocks(base / "micro", "alice", "m1cr0:pass") as micro,
        daemons.tinyproxy(base / "tiny", "bob", "t1ny-pass") as tiny,
        daemons.ssh_socks(base / "ssh") as ssh,
    ):
        chain: AsyncProxy | None = None
        hop_schemes = [(dante, "socks5"), (micro, "socks5"), (tiny, "http"), (ssh, "socks5")]
        for proxy, scheme in hop_schemes:
            chain = AsyncProxy.from_url(proxy.url(scheme), forward=chain)
        assert chain is not None
        stream = await chain.connect("127.0.0.1", pong_port, timeout=CONNECT_TIMEOUT)
        try:
            await stream.write(b"ping\n")
            assert await stream.read_exactly(len(b"pong ping\n")) == b"pong ping\n"
        finally:
            await stream.close()

        hops = [(dante, micro.port), (micro, tiny.port), (tiny, ssh.port), (ssh, pong_port)]
        for proxy, next_port in hops:
            assert proxy.wait_for_destination(next_port), proxy.log_text()
            assert proxy.destinations() == [("127.0.0.1", next_port)], proxy.name
