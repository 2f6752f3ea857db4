"""botsession probe through the real daemons: it names the hop that is broken and why."""

from __future__ import annotations

import json

from ..servers import BotApiStandIn
from ..support import SENTINEL, free_port
from ..test_cli import botsession
from .daemons import RunningProxy


def test_probe_good_chain_exits_0(
    bot_api: BotApiStandIn,
    dante: RunningProxy,
    micro: RunningProxy,
    tiny: RunningProxy,
    ssh_proxy: RunningProxy,
) -> None:
    """probe walks a 4-daemon chain hop by hop, reaches the Bot API and exits 0."""
    route = [dante.url("socks5"), micro.url("socks5"), tiny.url("http"), ssh_proxy.url("socks4a")]
    env = {"BOT_PROXY": json.dumps(route), "BOT_API__BASE": bot_api.base}
    result = botsession("probe", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("probing client → socks5 127.0.0.1:")
    assert [line.split(" … ")[1].split()[0] for line in lines[1:5]] == ["ok", "ok", "ok", "ok"]
    assert lines[1].startswith(
        f"[1/5] hop 1 socks5://127.0.0.1:{dante.port} → hop 2 127.0.0.1:{micro.port}"
    )
    assert lines[4].startswith(
        f"[4/5] hop 4 socks4a://127.0.0.1:{ssh_proxy.port} → 127.0.0.1:{bot_api.port}"
    )
    assert lines[5].startswith(f"[5/5] GET {bot_api.base} through the route … HTTP 404 in ")
    assert lines[6] == "route ok"
    assert SENTINEL not in result.stdout + result.stderr


def test_probe_names_a_dead_third_hop(
    bot_api: BotApiStandIn, dante: RunningProxy, micro: RunningProxy
) -> None:
    """With hop 3 dead, probe exits 3 and names hop 3 as unreachable."""
    dead = free_port()
    route = [
        dante.url("socks5"),
        micro.url("socks5"),
        f"http://127.0.0.1:{dead}",
        "socks5://127.0.0.1:1",
    ]
    result = botsession("probe", "--url", bot_api.base, env={"BOT_PROXY": json.dumps(route)})
    assert result.returncode == 3, result.stdout + result.stderr
    assert "[2/5] hop 2 socks5://mia:***@127.0.0.1" in result.stdout
    assert "FAILED" in result.stdout.splitlines()[2]
    assert result.stderr.strip() == (
        f"probe failed: hop 3 of 4 (http://127.0.0.1:{dead}) is unreachable: hop 2 could not "
        "connect to it (connection refused (0x05))"
    )


def test_probe_says_credentials_were_rejected_at_hop_2(
    bot_api: BotApiStandIn, dante: RunningProxy, tiny: RunningProxy
) -> None:
    """Wrong credentials on hop 2 are reported as rejected at hop 2, without the password."""
    wrong = tiny.url("http", credentials=False).replace("http://", "http://tom:wrong-pass@")
    result = botsession(
        "probe", "--url", bot_api.base, env={"BOT_PROXY": json.dumps([dante.url("socks5"), wrong])}
    )
    assert result.returncode == 3
    assert result.stderr.startswith(
        f"probe failed: the credentials were rejected at hop 2 of 2 (http://tom:***@127.0.0.1:{tiny.port})"
    )
    assert "wrong-pass" not in result.stdout + result.stderr


def test_probe_step_is_bounded_by_timeout(
    bot_api: BotApiStandIn, dante: RunningProxy, silent_server: object
) -> None:
    """A hop that never answers fails its step after --timeout seconds and is named."""
    port = silent_server.port  # type: ignore[attr-defined]
    route = [dante.url("socks5"), f"socks5://127.0.0.1:{port}"]
    result = botsession(
        "probe", "--timeout", "1", "--url", bot_api.base, env={"BOT_PROXY": json.dumps(route)}
    )
    assert result.returncode == 3
    assert (
        f"probe failed: hop 2 of 2 (socks5://127.0.0.1:{port}): timed out: no answer within the 1 s connect timeout"
        in result.stderr
    )
