"""Real Debian proxy daemons on loopback ports, for end-to-end proxy tests.

Each context manager writes a throwaway config into ``workdir``, starts the
daemon in the foreground in a session and process group of its own (so all it
forks can be signalled at once), waits until its port accepts connections,
yields a :class:`RunningProxy` and on exit always stops it and waits until its
process groups are empty.

Every daemon is configured to log the connections it makes *out*, and
:meth:`RunningProxy.destinations` parses those logs, so a test can prove that a
given hop of a proxy chain was really used.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..support import LOOPBACK, free_port, proxy_url

STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
# How long a daemon's children get to exit by themselves once their parent is gone.
STOP_GRACE = 1.0
POLL_INTERVAL = 0.05
# A port picked with bind(0) can be taken by someone else before the daemon binds it.
_START_ATTEMPTS = 3
_ADDRESS_IN_USE = re.compile(r"address already in use|could not create listening sockets", re.I)
# /usr/sbin is often missing from a non-root PATH, but that is where danted and sshd live.
_EXTRA_BIN_DIRS = ("/usr/sbin", "/sbin", "/usr/bin")
# tinyproxy's config grammar only accepts these characters in BasicAuth credentials.
_TINYPROXY_CREDENTIAL = re.compile(r"[-A-Za-z0-9._]+")

Destination = tuple[str, int]


class DaemonError(RuntimeError):
    """A daemon did not start (the message carries the tail of its logs)."""


# --------------------------------------------------------------------------- log parsers

# pass(1): tcp/connect [: 127.0.0.1.54862 127.0.0.1.21080 -> 127.0.0.1.50093 127.0.0.1.29999
# "[" opens a session, i.e. the outgoing connect succeeded; refusals only log a "]" line
# and SOCKS4a requests (Dante has no 4a) are "block(1): tcp/connect ]: ... 0.0.0.1.N".
_DANTE_CONNECT = re.compile(
    r"\bpass\(\d+\): tcp/connect \[: .* -> \S+ (?P<host>\S+)\.(?P<port>\d+)$"
)

# client[4] 127.0.0.1: connected to 127.0.0.1:29999 (only printed after a successful connect)
_MICROSOCKS_CONNECT = re.compile(r"^client\[\d+\] \S+: connected to (?P<target>\S+)$")

# tinyproxy logs the port only when it starts connecting and the success line lacks it:
#   INFO ... opensock: opening connection to 127.0.0.1:29999
#   CONNECT ... Established connection to host "127.0.0.1" using file descriptor 6.
#   ERROR ... opensock: Could not establish a connection to localhost:29998
_TINYPROXY_OPENING = re.compile(r"\]: opensock: opening connection to (?P<target>\S+)$")
_TINYPROXY_FAILED = re.compile(
    r"\]: opensock: Could not establish a connection to (?P<target>\S+)$"
)
_TINYPROXY_ESTABLISHED = re.compile(
    r'\]: Established connection to (?:host|upstream proxy) "(?P<host>[^"]*)"'
)

# ssh -vv, per SOCKS client channel:
#   debug2: channel 1: dynamic request: socks5 host 127.0.0.1 port 29999 command 1
#   debug2: channel 1: open confirm rwindow 2097152 rmax 32768   (sshd connected)
#   channel 1: open failed: connect failed: Connection refused    (sshd did not)
_SSH_REQUEST = re.compile(
    r"channel (?P<chan>\d+): dynamic request: socks[45] host (?P<host>\S+) port (?P<port>\d+) "
)
_SSH_CONFIRM = re.compile(r"channel (?P<chan>\d+): open confirm ")
_SSH_FAILED = re.compile(r"channel (?P<chan>\d+): open failed")

# sshd's listener at LogLevel DEBUG1, once per accepted connection; the child calls setsid(),
# so its pid is also the id of the process group (and session) serving that connection.
#   debug1: Forked child 32612.
_SSHD_FORKED_CHILD = re.compile(r"^debug1: Forked child (?P<pid>\d+)\.$")


def _complete_lines(text: str) -> list[str]:
    # A line still being written could end in a truncated port number.
    lines = text.split("\n")
    return [line.rstrip("\r") for line in lines[:-1]]


def _split_host_port(target: str) -> Destination:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


def parse_danted_log(text: str) -> list[Destination]:
    """Successful outgoing TCP connects from a Dante ``logoutput`` file."""
    found = []
    for line in _complete_lines(text):
        match = _DANTE_CONNECT.search(line)
        if match:
            found.append((match["host"], int(match["port"])))
    return found


def parse_microsocks_log(text: str) -> list[Destination]:
    """Successful outgoing connects from microsocks' stdout/stderr."""
    found = []
    for line in _complete_lines(text):
        match = _MICROSOCKS_CONNECT.search(line)
        if match:
            found.append(_split_host_port(match["target"]))
    return found


def parse_tinyproxy_log(text: str) -> list[Destination]:
    """Established outgoing connections from a tinyproxy ``LogFile`` (LogLevel Info)."""
    found: list[Destination] = []
    pending: list[Destination] = []  # connects started but not yet reported as established
    for line in _complete_lines(text):
        if match := _TINYPROXY_OPENING.search(line):
            pending.append(_split_host_port(match["target"]))
        elif match := _TINYPROXY_FAILED.search(line):
            with contextlib.suppress(ValueError):
                pending.remove(_split_host_port(match["target"]))
        elif match := _TINYPROXY_ESTABLISHED.search(line):
            # Worker threads interleave, so pair by host rather than by position.
            for index, (host, _port) in enumerate(pending):
                if host == match["host"]:
                    found.append(pending.pop(index))
                    break
    return found


def parse_ssh_log(text: str) -> list[Destination]:
    """Dynamic-forward targets that sshd confirmed, from an ``ssh -vv -D`` client log."""
    found: list[Destination] = []
    pending: dict[str, Destination] = {}  # channel id -> requested target
    for line in _complete_lines(text):
        if match := _SSH_REQUEST.search(line):
            pending[match["chan"]] = (match["host"], int(match["port"]))
        elif match := _SSH_CONFIRM.search(line):
            if match["chan"] in pending:
                found.append(pending.pop(match["chan"]))
        elif match := _SSH_FAILED.search(line):
            pending.pop(match["chan"], None)
    return found


def parse_sshd_forked_children(text: str) -> list[int]:
    """Pids of sshd's per-connection processes, from its LogLevel DEBUG1 log, in order."""
    found = []
    for line in _complete_lines(text):
        if match := _SSHD_FORKED_CHILD.search(line):
            found.append(int(match["pid"]))
    return found


_PARSERS: dict[str, Callable[[str], list[Destination]]] = {
    "danted": parse_danted_log,
    "microsocks": parse_microsocks_log,
    "tinyproxy": parse_tinyproxy_log,
    "ssh -D": parse_ssh_log,
}


# --------------------------------------------------------------------------- public API


@dataclass
class RunningProxy:
    """A started daemon: where it listens, its credentials and the log recording its hops."""

    name: str
    host: str
    port: int
    username: str | None
    password: str | None
    log_path: Path
    # The process groups running for it, so tests can check the cleanup: the daemon's own
    # (it leads it, its forked children are in it) and, for "ssh -D", sshd's and the group
    # of sshd's process serving the ssh connection, which runs in a session of its own.
    process_groups: list[int] = field(default_factory=list)
    # Every loopback port its processes listen on: ``port`` and, for "ssh -D", sshd's.
    listening_ports: list[int] = field(default_factory=list)
    # Further logs (daemon stderr, sshd) that only matter when something goes wrong.
    extra_logs: list[Path] = field(default_factory=list)

    def url(self, scheme: str, *, credentials: bool = True) -> str:
        """``scheme://user:pass@127.0.0.1:port`` with percent-encoded credentials."""
        return proxy_url(
            scheme, self.host, self.port, self.username, self.password, credentials=credentials
        )

    def log_text(self) -> str:
        """The current content of the connection log."""
        return _read_text(self.log_path)

    def destinations(self) -> list[Destination]:
        """Every (host, port) this daemon connected out to, in log order."""
        return _PARSERS[self.name](self.log_text())

    def wait_for_destination(self, port: int, timeout: float = 5.0) -> bool:
        """Poll the log until an outgoing connection to ``port`` shows up (logs may lag)."""
        deadline = time.monotonic() + timeout
        while True:
            if any(dest_port == port for _host, dest_port in self.destinations()):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL)


def under_ci() -> bool:
    """Whether this is a CI run: any non-empty ``CI`` except ``0`` and ``false`` (any case)."""
    value = os.environ.get("CI", "").strip().lower()
    return value not in ("", "0", "false")


def unavailable(message: str) -> None:
    """A daemon test cannot run here: a failure under CI (where it is mandatory), else a skip."""
    if under_ci():
        pytest.fail(message)
    pytest.skip(message)


def require_binary(name: str) -> str:
    """Path of a daemon binary; fails under CI (where it is mandatory), else skips."""
    search_path = os.pathsep.join([os.environ.get("PATH", ""), *_EXTRA_BIN_DIRS])
    path = shutil.which(name, path=search_path)
    if path is None:
        unavailable(f"{name} not found; install the Debian package that provides it")
        raise AssertionError("unreachable")  # pragma: no cover
    # sshd re-executes itself and refuses to run from a relative path.
    return os.path.abspath(path)


@contextlib.contextmanager
def danted(workdir: Path) -> Iterator[RunningProxy]:
    """Dante: SOCKS5 without auth and SOCKS4 (no 4a) on one port."""
    binary = require_binary("danted")
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "danted.log"
    stderr_path = workdir / "danted.stderr"
    config_path = workdir / "danted.conf"

    def write_config(port: int) -> list[str]:
        # As root, work as nobody like a real deployment (Dante only warns about uid 0);
        # a non-root Dante cannot switch users, so the lines are left out.
        users = "user.privileged: root\nuser.unprivileged: nobody\n" if os.geteuid() == 0 else ""
        config_path.write_text(
            f"logoutput: {log_path}\n"
            f"internal: {LOOPBACK} port = {port}\n"
            f"external: {LOOPBACK}\n"
            "socksmethod: none\n"
            "clientmethod: none\n"
            f"{users}"
            "client pass {\n"
            "  from: 0.0.0.0/0 to: 0.0.0.0/0\n"
            "  log: connect error\n"
            "}\n"
            "socks pass {\n"
            "  from: 0.0.0.0/0 to: 0.0.0.0/0\n"
            "  protocol: tcp\n"
            "  command: connect\n"
            "  log: connect error\n"
            "}\n"
        )
        # No -D: stays in the foreground. -p keeps it away from /var/run/danted.pid.
        return [binary, "-f", str(config_path), "-p", str(workdir / "danted.pid"), "-N", "1"]

    server = _serve("danted", write_config, stdout_path=stderr_path, logs=[log_path, stderr_path])
    with server as (port, process):
        yield RunningProxy(
            name="danted",
            host=LOOPBACK,
            port=port,
            username=None,
            password=None,
            log_path=log_path,
            process_groups=[process.pid],
            listening_ports=[port],
            extra_logs=[stderr_path],
        )


@contextlib.contextmanager
def microsocks(
    workdir: Path, username: str, password: str, *, port: int | None = None
) -> Iterator[RunningProxy]:
    """microsocks: SOCKS5 with username/password authentication (on ``port`` if given)."""
    binary = require_binary("microsocks")
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "microsocks.log"

    def command(port: int) -> list[str]:
        return [binary, "-i", LOOPBACK, "-p", str(port), "-u", username, "-P", password]

    # microsocks prints its per-client lines on stdout/stderr, so that is the log.
    serving = _serve("microsocks", command, stdout_path=log_path, logs=[log_path], port=port)
    with serving as (bound, process):
        yield RunningProxy(
            name="microsocks",
            host=LOOPBACK,
            port=bound,
            username=username,
            password=password,
            log_path=log_path,
            process_groups=[process.pid],
            listening_ports=[bound],
        )


@contextlib.contextmanager
def tinyproxy(workdir: Path, username: str, password: str) -> Iterator[RunningProxy]:
    """tinyproxy: HTTP CONNECT proxy with BasicAuth, CONNECT allowed to any port."""
    for value in (username, password):
        if not _TINYPROXY_CREDENTIAL.fullmatch(value):
            raise ValueError(f"tinyproxy BasicAuth only accepts [-A-Za-z0-9._]+, got {value!r}")
    binary = require_binary("tinyproxy")
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "tinyproxy.log"
    stderr_path = workdir / "tinyproxy.stderr"
    config_path = workdir / "tinyproxy.conf"

    def write_config(port: int) -> list[str]:
        # No User/Group: switching to nobody would lose access to the 0700 pytest tmp dir
        # holding the LogFile, and tinyproxy merely warns when it keeps running as root.
        # No ConnectPort lines: tinyproxy then allows CONNECT to every port.
        config_path.write_text(
            f"Port {port}\n"
            f"Listen {LOOPBACK}\n"
            "Timeout 60\n"
            f'LogFile "{log_path}"\n'
            "LogLevel Info\n"
            "MaxClients 1000\n"  # benchmarks keep hundreds of pooled tunnels open
            f"Allow {LOOPBACK}\n"
            f"BasicAuth {username} {password}\n"
        )
        return [binary, "-d", "-c", str(config_path)]

    logs = [log_path, stderr_path]
    with _serve("tinyproxy", write_config, stdout_path=stderr_path, logs=logs) as (port, process):
        yield RunningProxy(
            name="tinyproxy",
            host=LOOPBACK,
            port=port,
            username=username,
            password=password,
            log_path=log_path,
            process_groups=[process.pid],
            listening_ports=[port],
            extra_logs=[stderr_path],
        )


@contextlib.contextmanager
def ssh_socks(workdir: Path) -> Iterator[RunningProxy]:
    """A private sshd plus ``ssh -N -D``: SOCKS4, SOCKS4a and SOCKS5 without auth."""
    sshd_binary = require_binary("sshd")
    ssh_binary = require_binary("ssh")
    keygen = require_binary("ssh-keygen")
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # e.g. a container started with an arbitrary --user uid
        unavailable(f"ssh -D needs a passwd entry to log in as, uid {os.getuid()} has none")
        raise AssertionError("unreachable") from None  # pragma: no cover
    _prepare_privsep_dir()

    host_key = workdir / "ssh_host_ed25519_key"
    client_key = workdir / "id_ed25519"
    authorized_keys = workdir / "authorized_keys"
    for key in (host_key, client_key):
        subprocess.run(
            [keygen, "-q", "-t", "ed25519", "-N", "", "-C", "botsession-tests", "-f", str(key)],
            check=True,
            capture_output=True,
            timeout=STARTUP_TIMEOUT,
        )
    authorized_keys.write_text(client_key.with_suffix(".pub").read_text())
    sshd_log = workdir / "sshd.log"
    ssh_log = workdir / "ssh.log"
    sshd_config = workdir / "sshd_config"

    def write_sshd_config(port: int) -> list[str]:
        # sshd with UsePAM no refuses accounts whose password is locked ("!"), PAM does not.
        use_pam = "yes" if _password_locked(user) else "no"
        sshd_config.write_text(
            f"ListenAddress {LOOPBACK}\n"
            f"Port {port}\n"
            f"HostKey {host_key}\n"
            f"AuthorizedKeysFile {authorized_keys}\n"
            f"PidFile {workdir / 'sshd.pid'}\n"
            f"AllowUsers {user}\n"
            "PermitRootLogin prohibit-password\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            f"UsePAM {use_pam}\n"
            # pytest's tmp dirs are not what StrictModes expects of a home directory.
            "StrictModes no\n"
            "AllowTcpForwarding yes\n"
            "PermitTTY no\n"
            "X11Forwarding no\n"
            "PrintMotd no\n"
            # DEBUG1 is the lowest level that logs the pid of each per-connection process.
            "LogLevel DEBUG1\n"
        )
        # Absolute path is required for sshd's re-exec; -D foreground, -e log to stderr.
        return [sshd_binary, "-D", "-e", "-f", str(sshd_config)]

    sshd_server = _serve("sshd", write_sshd_config, stdout_path=sshd_log, logs=[sshd_log])
    with sshd_server as (sshd_port, sshd_process):

        def ssh_command(port: int) -> list[str]:
            return [
                ssh_binary,
                "-N",
                "-D",
                f"{LOOPBACK}:{port}",
                "-p",
                str(sshd_port),
                "-i",
                str(client_key),
                # -F /dev/null and the options below shut out every user/system setting.
                "-F",
                "/dev/null",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "IdentityAgent=none",
                "-o",
                "ControlPath=none",
                "-o",
                "ExitOnForwardFailure=yes",
                # DEBUG2 is the lowest level that logs each SOCKS target and its open confirm.
                "-o",
                "LogLevel=DEBUG2",
                f"{user}@{LOOPBACK}",
            ]

        ssh_server = _serve("ssh -D", ssh_command, stdout_path=ssh_log, logs=[ssh_log, sshd_log])
        connection: int | None = None
        try:
            with ssh_server as (port, ssh_process):
                # sshd accepted the readiness probe, then ssh (after any failed ssh attempts,
                # whose connections closed with them): the last connection is this ssh's.
                forked = parse_sshd_forked_children(_read_text(sshd_log))
                connection = forked[-1] if forked and group_alive(forked[-1]) else None
                groups = [ssh_process.pid, sshd_process.pid]
                try:
                    yield RunningProxy(
                        name="ssh -D",
                        host=LOOPBACK,
                        port=port,
                        username=None,
                        password=None,
                        log_path=ssh_log,
                        process_groups=groups if connection is None else [*groups, connection],
                        listening_ports=[port, sshd_port],
                        extra_logs=[sshd_log],
                    )
                finally:
                    # ssh -N exits when its connection drops: while ssh runs, the process
                    # serving it still exists and the group id cannot have been reused.
                    if ssh_process.poll() is not None:
                        connection = None
        finally:
            # sshd's listener is still up: stopping ssh (above) closed the connection, so the
            # process serving it exits by itself and the listener reaps it. It is in a session
            # of its own, out of reach of sshd's group, so it is stopped here should it linger.
            if connection is not None:
                _stop_group(connection, grace=STOP_TIMEOUT)


def group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` has any member left (unreaped zombies count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's processes
        return True
    return True


# --------------------------------------------------------------------------- process handling


@contextlib.contextmanager
def _serve(
    name: str,
    make_command: Callable[[int], list[str]],
    *,
    stdout_path: Path,
    logs: Sequence[Path],
    port: int | None = None,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Start ``make_command(port)`` on ``port`` or a free one, wait until it listens, stop it."""
    fixed = port
    for attempt in range(1, _START_ATTEMPTS + 1):
        port = fixed if fixed is not None else free_port()
        command = make_command(port)
        # The child keeps its own copy of the descriptor; ours is closed right away.
        with stdout_path.open("ab") as output:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=stdout_path.parent,
                # Own session and process group, so stopping reaches every forked child.
                start_new_session=True,
            )
        try:
            _wait_until_listening(name, process, port, logs)
        except DaemonError as error:
            _stop(process)
            if fixed is None and attempt < _START_ATTEMPTS and _ADDRESS_IN_USE.search(str(error)):
                continue
            raise
        except BaseException:
            _stop(process)
            raise
        try:
            yield port, process
        finally:
            _stop(process)
        return


def _wait_until_listening(
    name: str, process: subprocess.Popen[bytes], port: int, logs: Sequence[Path]
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise DaemonError(
                f"{name} exited with status {process.returncode} before listening on "
                f"{LOOPBACK}:{port}\n{_log_tails(logs)}"
            )
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise DaemonError(
                f"{name} did not listen on {LOOPBACK}:{port} within {STARTUP_TIMEOUT} s\n"
                f"{_log_tails(logs)}"
            )
        time.sleep(POLL_INTERVAL)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a daemon and everything in its process group, within bounded waits.

    SIGTERM goes to the leader alone first: Dante's mother process then shuts its children
    down itself instead of logging a storm of "child exited unexpectedly". Whatever is left
    of the group then gets SIGTERM, and SIGKILL at last, until the group is empty.
    """
    pgid = process.pid  # start_new_session=True: the daemon leads a group of its own
    with _adopting_orphans():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            # Unreaped, the leader keeps its pid, which is the group id, from being reused.
            _signal_group(pgid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT)
        _stop_group(pgid, grace=STOP_GRACE)


def _stop_group(pgid: int, *, grace: float) -> bool:
    """Let group ``pgid`` empty by itself for ``grace`` s, then SIGTERM it, then SIGKILL it.

    Returns whether the group is empty. Every wait is bounded: an unreaped zombie keeps a
    group non-empty, so where nothing reaps it the group is given up on.
    """
    if _wait_until_empty(pgid, grace):
        return True
    for signum in (signal.SIGTERM, signal.SIGKILL):
        # A group id is only freed once the group is empty, and was not a moment ago.
        _signal_group(pgid, signum)
        if _wait_until_empty(pgid, STOP_TIMEOUT):
            return True
    return False


def _wait_until_empty(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        _reap(pgid)
        if not group_alive(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _reap(pgid: int) -> None:
    """Collect the exited members of group ``pgid`` that are this process's children."""
    # Only orphans adopted by _adopting_orphans: by now the leader has been waited for.
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-pgid, os.WNOHANG)[0] != 0:
            pass


_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


@contextlib.contextmanager
def _adopting_orphans() -> Iterator[None]:
    """Make this process the reaper of its orphaned descendants inside the block (Linux).

    A daemon's children outlive it by a moment and are then reparented to PID 1, which in a
    container may reap late (or never, when PID 1 is pytest itself): their zombies would
    keep the group non-empty. Adopted, they are collected by :func:`_reap` right away.
    Elsewhere this does nothing and the waits stay bounded.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        prctl = None
    previous = ctypes.c_int()
    if (
        prctl is None
        or prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0) != 0
        or prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0
    ):
        yield
        return
    try:
        yield
    finally:
        prctl(_PR_SET_CHILD_SUBREAPER, previous.value, 0, 0, 0)


# --------------------------------------------------------------------------- helpers


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _log_tails(paths: Sequence[Path], lines: int = 30) -> str:
    parts = []
    for path in paths:
        tail = "\n".join(_read_text(path).splitlines()[-lines:]) or "(empty)"
        parts.append(f"--- {path.name} (last {lines} lines) ---\n{tail}")
    return "\n".join(parts)


def _prepare_privsep_dir() -> None:
    """sshd running as root insists on its privilege-separation directory."""
    privsep = Path("/run/sshd")
    if privsep.is_dir():
        return
    if os.geteuid() == 0:
        privsep.mkdir(mode=0o755, parents=True, exist_ok=True)
        return
    # Non-root sshd does not drop privileges, so the directory is not needed.


def _password_locked(user: str) -> bool:
    """Whether /etc/shadow marks ``user``'s password as locked (readable as root only)."""
    try:
        lines = Path("/etc/shadow").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        name, _, rest = line.partition(":")
        if name == user:
            return rest.startswith("!")
    return False
