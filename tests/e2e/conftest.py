"""The end-to-end suite: real Debian proxy daemons (danted, microsocks, tinyproxy, ssh -D, and
stunnel in front of tinyproxy with a certificate of the test CA), started once on free loopback
ports and shared by its tests. Every test here is marked
``daemons``; under CI a missing daemon fails it instead of skipping it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from ..support import SENTINEL
from . import daemons, tls_daemons

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.daemons)


# --- real Debian daemons (the "daemons" suite): started once, shared by all its tests --------


@pytest.fixture(scope="session")
def dante(tmp_path_factory: pytest.TempPathFactory) -> Iterator[daemons.RunningProxy]:
    """danted: SOCKS5 without auth and strict SOCKS4 (no 4a) on one port."""
    with daemons.danted(tmp_path_factory.mktemp("danted")) as running:
        yield running


@pytest.fixture(scope="session")
def micro(tmp_path_factory: pytest.TempPathFactory) -> Iterator[daemons.RunningProxy]:
    """microsocks: SOCKS5 with username/password (the sentinel)."""
    with daemons.microsocks(tmp_path_factory.mktemp("microsocks"), "mia", SENTINEL) as running:
        yield running


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[daemons.RunningProxy]:
    """tinyproxy: HTTP CONNECT with BasicAuth (the sentinel)."""
    with daemons.tinyproxy(tmp_path_factory.mktemp("tinyproxy"), "tom", SENTINEL) as running:
        yield running


@pytest.fixture(scope="session")
def ssh_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[daemons.RunningProxy]:
    """ssh -D against a throwaway sshd: SOCKS4a and SOCKS5."""
    with daemons.ssh_socks(tmp_path_factory.mktemp("ssh")) as running:
        yield running


@pytest.fixture(scope="session")
def proxy_certificates(
    ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tls_daemons.Certificate]:
    """Certificates of the test CA: good (127.0.0.1, localhost), for another host, expired."""
    directory = tmp_path_factory.mktemp("proxy-certificates")
    now = datetime.now(UTC)
    return {
        "good": tls_daemons.issue(ca, directory, "good"),
        "other-host": tls_daemons.issue(ca, directory, "other-host", "proxy.example"),
        "expired": tls_daemons.issue(
            ca,
            directory,
            "expired",
            not_before=now - timedelta(days=60),
            not_after=now - timedelta(days=1),
        ),
    }


@pytest.fixture(scope="session")
def stunnel(
    tmp_path_factory: pytest.TempPathFactory,
    tiny: daemons.RunningProxy,
    proxy_certificates: dict[str, tls_daemons.Certificate],
) -> Iterator[tls_daemons.TlsProxy]:
    """stunnel (certificate for 127.0.0.1) in front of tinyproxy (tom, the sentinel)."""
    directory = tmp_path_factory.mktemp("stunnel")
    with tls_daemons.stunnel(directory, tiny, proxy_certificates["good"]) as running:
        yield running
