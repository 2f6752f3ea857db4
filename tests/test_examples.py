"""The example bots in examples/, run as users run them: a subprocess reading bot.yaml and BOT_TOKEN.

The Bot API bots run against the stand-in Bot API through an in-process proxy; the tests check
what the bot printed and what the proxy and the stand-in received. The MTProto bots (Telethon,
kurigram) dial Telegram's own data center, which is not reachable here (and the stand-in DC
speaks no MTProto): they run as far as the route, a proxy on loopback that is dead or that
refuses to go beyond loopback, and the tests check what they asked it and what they said.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ProxyFactory
from .faultproxy import FaultProxyFactory
from .servers import BotApiStandIn
from .support import LOOPBACK, SENTINEL, TOKEN, free_port

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BOTS = ["aiogram_bot.py", "ptb_bot.py"]
"""The Bot API bots."""
MTPROTO_BOTS = ["telethon_bot.py", "kurigram_bot.py"]
"""The MTProto bots: they also need the application's api_id and api_hash."""
APPLICATION = {"API_ID": "12345", "API_HASH": "0" * 32}
TELEGRAM_DC2 = ("149.154.167.51", 443)
"""Where Telethon and kurigram look for Telegram first (DC 2), for a new session."""
NO_CONFIGURATION = (
    "no botsession configuration: write the route in bot.yaml (in the working directory or "
    "beside this script), name the file with BOT_CONFIG, or set BOT_PROXY"
)
START = {
    "update_id": 3,
    "message": {
        "message_id": 30,
        "date": 0,
        "chat": {"id": 7, "type": "private"},
        "from": {"id": 7, "is_bot": False, "first_name": "Ann"},
        "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    },
}
REPLY = "Hello! This answer went through the proxy route."


LOOPBACK_ONLY = """\
import ipaddress
import sys


def _loopback_only(event, args):
    if event == "socket.connect" and isinstance(args[1], tuple):
        host = args[1][0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise PermissionError(f"the tests allow connections to loopback only, not {host}")


sys.addaudithook(_loopback_only)
"""
"""The ``sitecustomize`` of every example run here: the MTProto bots dial Telegram's real data
centers, so a bot that went around its route would otherwise leave this machine."""


@pytest.fixture(autouse=True, scope="module")
def loopback_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The examples run by this module's tests can connect to loopback addresses only."""
    folder = tmp_path_factory.mktemp("loopback-only")
    (folder / "sitecustomize.py").write_text(LOOPBACK_ONLY)
    paths = [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(paths))
        yield


def environment(**variables: str) -> dict[str, str]:
    """This process's environment without BOT_* variables, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("BOT_")}
    env.update(variables)
    return env


def credentials(bot: str) -> dict[str, str]:
    """What ``bot`` needs besides its route: the token, and for an MTProto bot the
    application's api_id and api_hash."""
    return {"BOT_TOKEN": TOKEN, **(APPLICATION if bot in MTPROTO_BOTS else {})}


def complaint(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines the bot wrote to stderr, but for the warning kurigram logs when it is imported
    without TgCrypto."""
    lines = result.stderr.strip().splitlines()
    return [line for line in lines if not line.startswith("TgCrypto is missing!")]


def run_example(
    bot: str, *args: str, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / bot), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@pytest.fixture
def polling() -> Iterator[list[subprocess.Popen[str]]]:
    """Example processes started by a test; any still running at the end are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize("bot", BOTS)
def test_check_reads_bot_yaml_and_goes_through_the_proxy(
    bot: str, bot_api: BotApiStandIn, proxy: ProxyFactory, tmp_path: Path
) -> None:
    """``--check`` with a bot.yaml in the working directory prints the bot, fetched via the proxy."""
    hop = proxy("socks5", "mia", SENTINEL)
    config = {"proxy": hop.url(), "api": {"base": bot_api.base}}
    (tmp_path / "bot.yaml").write_text(json.dumps(config))  # JSON is YAML
    result = run_example(bot, "--check", env=environment(BOT_TOKEN=TOKEN), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"route: socks5://mia:***@127.0.0.1:{hop.port}",
        "bot: @standin_bot (id 42)",
    ]
    assert SENTINEL not in result.stdout + result.stderr
    assert hop.destinations == [("127.0.0.1", bot_api.port)]
    assert [call.method for call in bot_api.calls] == ["getMe"]
    assert {call.token for call in bot_api.calls} == {TOKEN}


@pytest.mark.parametrize("bot", BOTS)
def test_check_reads_the_file_named_by_bot_config_and_env(
    bot: str, bot_api: BotApiStandIn, proxy: ProxyFactory, tmp_path: Path
) -> None:
    """BOT_CONFIG names the file; a BOT_API__BASE variable overrides what it says."""
    hop = proxy("http")
    elsewhere = tmp_path / "conf" / "my-bot.yaml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(f"proxy: {hop.url()}\napi:\n  base: http://127.0.0.1:1\n")
    env = environment(BOT_TOKEN=TOKEN, BOT_CONFIG=str(elsewhere), BOT_API__BASE=bot_api.base)
    result = run_example(bot, "--check", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "bot: @standin_bot (id 42)" in result.stdout
    assert hop.destinations == [("127.0.0.1", bot_api.port)]


@pytest.mark.parametrize("bot", BOTS + MTPROTO_BOTS)
def test_missing_token_and_bad_config_are_explained(bot: str, tmp_path: Path) -> None:
    """Without BOT_TOKEN, or with a broken route, the bot exits saying what to fix."""
    without_token = {k: v for k, v in credentials(bot).items() if k != "BOT_TOKEN"}
    result = run_example(bot, "--check", env=environment(**without_token), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    assert complaint(result) == ["set BOT_TOKEN to your bot's token"]
    env = environment(**credentials(bot), BOT_PROXY=f"socks5://u:{SENTINEL}@127.0.0.1")
    result = run_example(bot, "--check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    heading, problem = complaint(result)
    assert heading == "invalid botsession configuration (1 problem):"
    assert problem.startswith("  - environment variable BOT_PROXY: ")
    assert SENTINEL not in result.stdout + result.stderr


@pytest.mark.parametrize("bot", BOTS)
def test_a_bot_yaml_beside_the_script_is_found_from_any_working_directory(
    bot: str, bot_api: BotApiStandIn, proxy: ProxyFactory, tmp_path: Path
) -> None:
    """A user's copy of the example, run by a relative path from another directory, reads the
    bot.yaml that sits beside it."""
    hop = proxy("socks5")
    folder = tmp_path / "my-bot"
    folder.mkdir()
    shutil.copy(EXAMPLES / bot, folder / bot)
    (folder / "bot.yaml").write_text(f"proxy: {hop.url()}\napi:\n  base: {bot_api.base}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, f"../my-bot/{bot}", "--check"],
        capture_output=True,
        text=True,
        env=environment(BOT_TOKEN=TOKEN),
        cwd=elsewhere,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"route: socks5://127.0.0.1:{hop.port}",
        "bot: @standin_bot (id 42)",
    ]
    assert hop.destinations == [("127.0.0.1", bot_api.port)]


@pytest.mark.parametrize("bot", BOTS + MTPROTO_BOTS)
def test_without_any_configuration_the_bot_says_so_instead_of_going_direct(
    bot: str, tmp_path: Path
) -> None:
    """With no bot.yaml (here or beside the script), no BOT_CONFIG, no .env and no BOT_
    setting, the bot exits non-zero saying where to put the route, having connected nowhere."""
    assert not (EXAMPLES / "bot.yaml").exists()
    result = run_example(bot, "--check", env=environment(**credentials(bot)), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    assert complaint(result) == [NO_CONFIGURATION]
    assert list(tmp_path.iterdir()) == []  # no session file either


@pytest.mark.parametrize("bot", BOTS)
def test_polling_bot_answers_start_through_the_proxy(
    bot: str,
    bot_api: BotApiStandIn,
    proxy: ProxyFactory,
    tmp_path: Path,
    polling: list[subprocess.Popen[str]],
) -> None:
    """Run without flags, the bot long-polls, answers /start via the proxy and stops on Ctrl+C.

    The stand-in drops the answer to sendMessage on purpose: the reply is sent once, not again.
    """
    hop = proxy("socks5")
    (tmp_path / "bot.yaml").write_text(f"proxy: {hop.url()}\napi:\n  base: {bot_api.base}\n")
    bot_api.push_update(START)
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / bot)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(BOT_TOKEN=TOKEN),
        cwd=tmp_path,
    )
    polling.append(process)
    deadline = time.monotonic() + 30
    while not any(call.method == "sendMessage" for call in bot_api.calls):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no answer to /start"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    [answer] = [call for call in bot_api.calls if call.method == "sendMessage"]
    assert (answer.form["chat_id"], answer.form["text"]) == ("7", REPLY)
    assert set(hop.destinations) == {("127.0.0.1", bot_api.port)}


# --- the MTProto bots, as far as the route ---------------------------------------------------


def test_the_examples_here_cannot_connect_beyond_loopback(tmp_path: Path) -> None:
    """A process started as the examples are refuses to connect to any address but loopback
    (checked on the audit event, so no connection is attempted)."""
    probe = (
        "import sys\n"
        "sys.audit('socket.connect', None, ('127.0.0.1', 9))\n"
        "sys.audit('socket.connect', None, ('::1', 9, 0, 0))\n"
        "sys.audit('socket.connect', None, ('149.154.167.51', 443))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=environment(),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "PermissionError: the tests allow connections to loopback only, not 149.154.167.51"
    )


def unreachable(result: subprocess.CompletedProcess[str], route: str) -> str:
    """The last error of the only route, from what the bot said when it gave up on ``route``
    (its stderr ends with the routes' states)."""
    *_, heading, status = result.stderr.strip().splitlines()
    assert heading == "could not connect to Telegram through the route:"
    assert status.startswith("  route proxy failed since "), status
    state, _, last_error = status.partition("; last error: ")
    assert state.endswith(f" UTC: {route}; hops -"), state
    return last_error


@pytest.mark.parametrize("bot", MTPROTO_BOTS)
def test_an_mtproto_bot_without_its_application_says_what_to_set(bot: str, tmp_path: Path) -> None:
    """Without API_ID (or with one that is not a number) or without API_HASH, an MTProto bot
    exits saying where to get them, before reading any configuration."""
    (tmp_path / "bot.yaml").write_text(f"proxy: socks5://{LOOPBACK}:{free_port()}\n")
    for missing in (
        {"API_ID": "", "API_HASH": APPLICATION["API_HASH"]},
        {"API_ID": "my-app", "API_HASH": APPLICATION["API_HASH"]},
        {"API_ID": APPLICATION["API_ID"]},
    ):
        result = run_example(
            bot, "--check", env=environment(BOT_TOKEN=TOKEN, **missing), cwd=tmp_path
        )
        assert (result.returncode, result.stdout) == (1, "")
        assert complaint(result) == [
            "set API_ID and API_HASH to your application's api_id and api_hash (my.telegram.org)"
        ]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bot.yaml"]


@pytest.mark.parametrize("bot", MTPROTO_BOTS)
def test_an_mtproto_bot_reads_the_file_named_by_bot_config(bot: str, tmp_path: Path) -> None:
    """BOT_CONFIG names the file the route is read from: a missing one is a configuration
    error naming it, not a direct connection."""
    named = tmp_path / "conf" / "my-bot.yaml"
    env = environment(**credentials(bot), BOT_CONFIG=str(named))
    result = run_example(bot, "--check", env=env, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    assert complaint(result) == [
        "invalid botsession configuration (1 problem):",
        f"  - {named}: the config file does not exist",
    ]


@pytest.mark.parametrize("bot", MTPROTO_BOTS)
def test_an_mtproto_bot_asks_the_proxy_in_bot_yaml_for_telegrams_data_center(
    bot: str, fault_proxy: FaultProxyFactory, tmp_path: Path
) -> None:
    """With a bot.yaml in the working directory, the bot's MTProto connection goes through its
    proxy, asking it for Telegram's DC 2; this proxy goes nowhere beyond loopback and refuses,
    and the bot exits printing the route's state, whose last error names the hop and what
    the proxy said."""
    hop = fault_proxy("socks5")
    (tmp_path / "bot.yaml").write_text(f"proxy: {hop.url()}\n")
    result = run_example(bot, "--check", env=environment(**credentials(bot)), cwd=tmp_path)
    assert (result.returncode, result.stdout.splitlines()) == (1, [f"route: {hop.url()}"])
    assert hop.requested[0] == TELEGRAM_DC2
    assert set(hop.requested) == {TELEGRAM_DC2}
    assert hop.destinations == []  # it connected nowhere
    assert unreachable(result, hop.url()).startswith(f"proxy hop 1 of 1 ({hop.url()}): ")


@pytest.mark.parametrize("bot", MTPROTO_BOTS)
def test_an_mtproto_bot_beside_its_bot_yaml_names_the_dead_hop(bot: str, tmp_path: Path) -> None:
    """A user's copy of the bot, run by a relative path from another directory, reads the
    bot.yaml beside it; with its proxy dead the bot exits printing the route's state, which
    names the hop with its password masked, and its session file is in the working
    directory, not beside the script."""
    folder = tmp_path / "my-bot"
    folder.mkdir()
    shutil.copy(EXAMPLES / bot, folder / bot)
    port = free_port()
    config = folder / "bot.yaml"
    config.write_text(f"proxy: socks5://mia:{SENTINEL}@{LOOPBACK}:{port}\n")
    config.chmod(0o600)  # a password in a file others can read is warned about
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, f"../my-bot/{bot}", "--check"],
        capture_output=True,
        text=True,
        env=environment(**credentials(bot)),
        cwd=elsewhere,
        timeout=120,
        check=False,
    )
    route = f"socks5://mia:***@{LOOPBACK}:{port}"
    assert (result.returncode, result.stdout.splitlines()) == (1, [f"route: {route}"])
    assert unreachable(result, route) == (
        f"proxy hop 1 of 1 ({route}): connection refused; is the proxy running and listening there?"
    )
    assert SENTINEL not in result.stdout + result.stderr
    session = bot.replace("_bot.py", "_bot.session")
    assert [path.name for path in elsewhere.iterdir()] == [session]
    assert sorted(path.name for path in folder.iterdir()) == sorted(["bot.yaml", bot])
