"""The example bots in examples/, run as users run them: a subprocess reading bot.yaml and BOT_TOKEN.

Each runs against the stand-in Bot API through an in-process proxy; the tests check what the
bot printed and what the proxy and the stand-in received.
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
from .servers import BotApiStandIn
from .support import SENTINEL, TOKEN

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BOTS = ["aiogram_bot.py", "ptb_bot.py"]
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


def environment(**variables: str) -> dict[str, str]:
    """This process's environment without BOT_* variables, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("BOT_")}
    env.update(variables)
    return env


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


@pytest.mark.parametrize("bot", BOTS)
def test_missing_token_and_bad_config_are_explained(bot: str, tmp_path: Path) -> None:
    """Without BOT_TOKEN, or with a broken route, the bot exits saying what to fix."""
    result = run_example(bot, "--check", env=environment(), cwd=tmp_path)
    assert (result.returncode, result.stderr.strip()) == (1, "set BOT_TOKEN to your bot's token")
    env = environment(BOT_TOKEN=TOKEN, BOT_PROXY=f"socks5://u:{SENTINEL}@127.0.0.1")
    result = run_example(bot, "--check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("invalid botsession configuration (1 problem):")
    assert "environment variable BOT_PROXY" in result.stderr
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


@pytest.mark.parametrize("bot", BOTS)
def test_without_any_configuration_the_bot_says_so_instead_of_going_direct(
    bot: str, tmp_path: Path
) -> None:
    """With no bot.yaml (here or beside the script), no BOT_CONFIG, no .env and no BOT_
    setting, the bot exits non-zero saying where to put the route, having connected nowhere."""
    assert not (EXAMPLES / "bot.yaml").exists()
    result = run_example(bot, "--check", env=environment(BOT_TOKEN=TOKEN), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.strip() == (
        "no botsession configuration: write the route in bot.yaml (in the working directory or "
        "beside this script), name the file with BOT_CONFIG, or set BOT_PROXY"
    )


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
