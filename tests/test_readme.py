"""The README's quickstarts, run as a newcomer runs them: each ``python - <<'EOF'`` program of
its bash blocks, as written, in a directory holding a ``bot.yaml`` and with ``BOT_TOKEN`` set.

The ``bot.yaml`` names an in-process SOCKS5 proxy and, since Telegram is not reachable here, the
stand-in Bot API as ``api.base``: the programs themselves are the README's, byte for byte.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ProxyFactory
from .servers import BotApiStandIn
from .support import TOKEN, free_port
from .test_examples import environment

README = Path(__file__).resolve().parent.parent / "README.md"
HEREDOC = re.compile(r"^python - <<'EOF'\n(.*?)^EOF$", re.MULTILINE | re.DOTALL)


def quickstarts() -> list[str]:
    """The Python programs the README's quickstarts feed to ``python -``, in order."""
    return HEREDOC.findall(README.read_text(encoding="utf-8"))


def run_quickstart(
    program: str, folder: Path, config: dict[str, object]
) -> subprocess.CompletedProcess[str]:
    (folder / "bot.yaml").write_text(json.dumps(config))  # JSON is YAML
    return subprocess.run(
        [sys.executable, "-"],
        input=program,
        capture_output=True,
        text=True,
        env=environment(BOT_TOKEN=TOKEN),
        cwd=folder,
        timeout=60,
        check=False,
    )


def test_the_readme_has_the_aiogram_and_the_ptb_quickstart() -> None:
    """The README feeds two programs to python: the aiogram one, then the PTB one."""
    programs = quickstarts()
    assert len(programs) == 2
    assert "from aiogram import Bot" in programs[0]
    assert "from telegram import Bot" in programs[1]


@pytest.mark.parametrize("which", [0, 1], ids=["aiogram", "ptb"])
def test_a_readme_quickstart_prints_the_bot_fetched_through_the_proxy(
    which: int, bot_api: BotApiStandIn, proxy: ProxyFactory, tmp_path: Path
) -> None:
    """As the README says, the quickstart prints the bot (``is_bot=True``), fetched through the
    proxy in bot.yaml."""
    hop = proxy("socks5")
    ran = run_quickstart(
        quickstarts()[which], tmp_path, {"proxy": hop.url(), "api": {"base": bot_api.base}}
    )
    assert ran.returncode == 0, ran.stderr
    assert "is_bot=True" in ran.stdout
    # PTB's Bot fetches itself on entering `async with`, then the program asks again.
    assert [call.method for call in bot_api.calls] == ["getMe"] * (1 + which)
    assert len(hop.destinations) >= 1  # the request went through the proxy


@pytest.mark.parametrize("which", [0, 1], ids=["aiogram", "ptb"])
def test_a_readme_quickstart_with_the_proxy_down_names_the_hop_as_the_readme_says(
    which: int, bot_api: BotApiStandIn, tmp_path: Path
) -> None:
    """With nothing listening at the proxy's address, the quickstart fails with the message the
    README quotes, naming the hop."""
    dead = f"socks5://127.0.0.1:{free_port()}"
    ran = run_quickstart(
        quickstarts()[which], tmp_path, {"proxy": dead, "api": {"base": bot_api.base}}
    )
    assert ran.returncode != 0
    expected = (
        f"proxy hop 1 of 1 ({dead}): connection refused; is the proxy running and listening there?"
    )
    assert expected in ran.stderr
    quoted = README.read_text(encoding="utf-8")
    assert (
        "`proxy hop 1 of 1 (socks5://127.0.0.1:1080): connection refused; is the proxy running and\nlistening there?`"
        in quoted
    )
    assert TOKEN.split(":")[1] not in ran.stderr
    assert bot_api.calls == []
