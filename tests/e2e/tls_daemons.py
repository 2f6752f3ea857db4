"""Real HTTPS proxies on loopback ports: squid's ``https_port`` and stunnel in front of tinyproxy.

As in ``daemons``, each context manager writes a throwaway config, starts the daemon in the
foreground in a process group of its own, waits until it listens, yields a :class:`TlsProxy`
and always stops it. Certificates come from the test's CA (trustme), written by
:func:`issue`; the proxy's logs prove which connections it made (squid's ``access.log``, or
the log of the tinyproxy behind stunnel).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trustme

from ..support import proxy_url
from .daemons import (
    LOOPBACK,
    POLL_INTERVAL,
    Destination,
    RunningProxy,
    _read_text,
    _serve,
    free_port,
    require_binary,
    unavailable,
)

SQUID_AUTH_HELPER = Path("/usr/lib/squid/basic_ncsa_auth")
# squid refuses to run as root and switches to this user (Debian's squid package creates it).
SQUID_USER = "proxy"

# 1795999655.090     26 127.0.0.1 TCP_TUNNEL/200 3595 CONNECT 127.0.0.1:18080 tom HIER_DIRECT/…
_SQUID_TUNNEL = re.compile(r"\sTCP_TUNNEL/200\s+\d+\s+CONNECT\s+(?P<target>\S+)\s+(?P<user>\S+)\s")


def parse_squid_access_log(text: str) -> list[tuple[Destination, str]]:
    """The CONNECT tunnels squid opened, with the user each was authenticated as."""
    found = []
    for line in text.splitlines():
        match = _SQUID_TUNNEL.search(line)
        if match:
            host, _, port = match["target"].rpartition(":")
            found.append(((host.strip("[]"), int(port)), match["user"]))
    return found


@dataclass(frozen=True)
class Certificate:
    """A certificate and key in PEM files, issued by the test CA."""

    cert: Path
    key: Path


def issue(
    ca: trustme.CA,
    directory: Path,
    name: str,
    *identities: str,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Certificate:
    """Write a certificate of ``ca`` for ``identities`` (127.0.0.1 and localhost by default),
    valid from ``not_before`` (an hour ago) to ``not_after`` (a year from now)."""
    now = datetime.now(UTC)
    leaf = ca.issue_cert(
        *(identities or (LOOPBACK, "localhost")),
        not_before=not_before or now - timedelta(hours=1),
        not_after=not_after or now + timedelta(days=365),
    )
    directory.mkdir(parents=True, exist_ok=True)
    certificate = Certificate(directory / f"{name}.crt", directory / f"{name}.key")
    certificate.cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(certificate.key))
    return certificate


@dataclass
class TlsProxy:
    """A started HTTPS proxy: where it listens for TLS, its credentials, and its connections."""

    name: str
    host: str
    port: int
    username: str | None
    password: str | None
    log_path: Path
    destinations: Callable[[], list[Destination]]
    """Every (host, port) the proxy connected out to, in log order."""
    plain_port: int | None = None
    """A plain-HTTP port of the same proxy (squid's http_port), if it has one."""
    process_groups: list[int] = field(default_factory=list)

    def url(self, *, credentials: bool = True, password: str | None = None) -> str:
        """``https://user:pass@127.0.0.1:port`` (``password`` replaces the right one)."""
        secret = password if password is not None else self.password
        return proxy_url(
            "https", self.host, self.port, self.username, secret, credentials=credentials
        )

    def wait_for_destination(self, port: int, timeout: float = 5.0) -> bool:
        """Poll the log until a connection to ``port`` shows up (squid logs a tunnel when it
        ends)."""
        deadline = time.monotonic() + timeout
        while True:
            if any(dest_port == port for _host, dest_port in self.destinations()):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL)

    def hop(self, ca_file: Path | str | None, **fields: Any) -> dict[str, Any]:
        """The hop in mapping form, trusting ``ca_file``."""
        trust = {"ca_file": str(ca_file)} if ca_file is not None else {}
        return {"url": self.url(), **trust, **fields}


@contextlib.contextmanager
def stunnel(workdir: Path, behind: RunningProxy, certificate: Certificate) -> Iterator[TlsProxy]:
    """stunnel accepting TLS with ``certificate`` and passing the plain bytes to ``behind``
    (tinyproxy): together an HTTPS proxy with tinyproxy's credentials."""
    binary = _first_binary("stunnel4", "stunnel")
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "stunnel.log"
    config_path = workdir / "stunnel.conf"

    def write_config(port: int) -> list[str]:
        config_path.write_text(
            "foreground = yes\n"
            "pid =\n"
            "debug = 5\n"
            "[https-proxy]\n"
            f"accept = {LOOPBACK}:{port}\n"
            f"connect = {behind.host}:{behind.port}\n"
            f"cert = {certificate.cert}\n"
            f"key = {certificate.key}\n"
        )
        return [binary, str(config_path)]

    with _serve("stunnel", write_config, stdout_path=log_path, logs=[log_path]) as (port, process):
        yield TlsProxy(
            name="stunnel → tinyproxy",
            host=LOOPBACK,
            port=port,
            username=behind.username,
            password=behind.password,
            log_path=log_path,
            destinations=behind.destinations,
            process_groups=[process.pid],
        )


@contextlib.contextmanager
def squid(username: str, password: str, certificate: Certificate) -> Iterator[TlsProxy]:
    """squid (Debian's squid-openssl) with an ``https_port`` using ``certificate``, Basic
    authentication of ``username``, CONNECT allowed to any port, and a plain ``http_port``.

    Its files live in a directory of their own outside pytest's (which squid's user cannot
    enter when the tests run as root), removed afterwards.
    """
    binary = require_binary("squid")
    if not SQUID_AUTH_HELPER.exists():
        unavailable(f"{SQUID_AUTH_HELPER} not found; install squid-openssl")
    openssl = require_binary("openssl")
    workdir = Path(tempfile.mkdtemp(prefix="botsession-squid-"))
    try:
        yield from _squid(
            binary, openssl, workdir, username=username, password=password, certificate=certificate
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _squid(
    binary: str,
    openssl: str,
    workdir: Path,
    *,
    username: str,
    password: str,
    certificate: Certificate,
) -> Iterator[TlsProxy]:
    import subprocess

    cert, key = workdir / "proxy.crt", workdir / "proxy.key"
    shutil.copyfile(certificate.cert, cert)
    shutil.copyfile(certificate.key, key)
    hashed = (
        subprocess.run(
            [openssl, "passwd", "-apr1", "-stdin"],
            input=password.encode(),
            capture_output=True,
            check=True,
            timeout=10,
        )
        .stdout.decode()
        .strip()
    )
    (workdir / "passwd").write_text(f"{username}:{hashed}\n")
    access_log, cache_log = workdir / "access.log", workdir / "cache.log"
    stdout_path = workdir / "squid.out"
    plain_port = free_port()
    as_root = os.geteuid() == 0
    if as_root:
        try:
            user = pwd.getpwnam(SQUID_USER)
        except KeyError:
            unavailable(f"squid runs as the user {SQUID_USER!r}, which does not exist here")
            raise AssertionError("unreachable") from None  # pragma: no cover
        workdir.chmod(0o755)
        for path in (workdir, *workdir.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)
    config_path = workdir / "squid.conf"

    def write_config(port: int) -> list[str]:
        config_path.write_text(
            f"https_port {LOOPBACK}:{port} tls-cert={cert} tls-key={key}\n"
            f"http_port {LOOPBACK}:{plain_port}\n"
            f"auth_param basic program {SQUID_AUTH_HELPER} {workdir / 'passwd'}\n"
            "auth_param basic children 2 startup=1 idle=1\n"
            "auth_param basic realm botsession\n"
            "acl authenticated proxy_auth REQUIRED\n"
            "http_access allow authenticated\n"
            "http_access deny all\n"
            "cache deny all\n"
            "cache_mem 0 MB\n"
            f"access_log stdio:{access_log}\n"
            f"cache_log {cache_log}\n"
            f"pid_filename {workdir / 'squid.pid'}\n"
            f"coredump_dir {workdir}\n"
            "shutdown_lifetime 0 seconds\n"
            + (f"cache_effective_user {SQUID_USER}\n" if as_root else "")
        )
        # -N: no daemon; -d 1: startup messages on stderr.
        return [binary, "-N", "-d", "1", "-f", str(config_path)]

    logs = [stdout_path, cache_log]
    with _serve("squid", write_config, stdout_path=stdout_path, logs=logs) as (port, process):
        yield TlsProxy(
            name="squid",
            host=LOOPBACK,
            port=port,
            username=username,
            password=password,
            log_path=access_log,
            destinations=lambda: [
                destination for destination, _user in parse_squid_access_log(_read_text(access_log))
            ],
            plain_port=plain_port,
            process_groups=[process.pid],
        )


def _first_binary(*names: str) -> str:
    for name in names[:-1]:
        found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin"]))
        if found:
            return found
    return require_binary(names[-1])
