"""What a user of one installation of botsession meets, printed as JSON.

Run by tests/test_install.py with the Python of a fresh venv that has botsession installed
from a wheel, with or without an extra; tests/test_install.py checks what it prints. It imports
only the standard library and botsession: the venv has nothing else a test could lean on.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import pydoc
import re
from collections.abc import Callable
from typing import Any

PROXY = "socks5://127.0.0.1:9"
"""A loopback proxy that is never dialled: building a session connects nothing."""

MODULES = (
    "aiogram",
    "telegram",
    "httpx",
    "telethon",
    "pyrogram",
    "opentelemetry",
    "aiohttp_socks",
    "python_socks",
)
"""The frameworks, and what botsession's core needed before (issue #19)."""

LAZY = (
    "AiohttpSession",
    "BotSessionRequest",
    "RouteStatus",
    "build_httpx_client",
    "build_httpx_transport",
    "build_ptb_request",
    "configure_application",
    "kurigram_connection",
    "telethon_connection",
)


async def close(made: Any) -> None:
    """Close what a builder made, by whichever name its framework gives closing (a
    connection class holds nothing open)."""
    if isinstance(made, type):
        return
    for method in ("aclose", "shutdown", "close"):
        if hasattr(made, method):
            await getattr(made, method)()
            return


async def outcomes() -> dict[str, str]:
    """Each builder's product (its type's name), or the ImportError it raised."""
    import botsession

    builders: dict[str, Callable[[], Any]] = {
        "build_client_session": lambda: botsession.build_client_session(proxy=PROXY),
        "build_session_from_config": lambda: botsession.build_session_from_config(proxy=PROXY),
        "AiohttpSession": lambda: botsession.AiohttpSession(proxy=PROXY),
        "build_ptb_request": lambda: botsession.build_ptb_request(proxy=PROXY),
        "build_httpx_client": lambda: botsession.build_httpx_client(proxy=PROXY),
        "telethon_connection": lambda: botsession.telethon_connection(proxy=PROXY),
        "kurigram_connection": lambda: botsession.kurigram_connection(proxy=PROXY),
    }
    found = {}
    for name, build in builders.items():
        try:
            made = build()
        except ImportError as error:
            found[name] = f"{type(error).__name__}: {error}"
        else:
            # the MTProto connections are classes: its name, not its metaclass's.
            found[name] = made.__name__ if isinstance(made, type) else type(made).__name__
            await close(made)
    return found


def listed() -> dict[str, list[str]]:
    """Which lazily loaded names ``dir()``, ``help()`` and ``from botsession import *`` show."""
    import botsession

    star: dict[str, Any] = {}
    exec("from botsession import *", star)  # noqa: S102 - a fixed statement, the user's import
    text = pydoc.render_doc(botsession, renderer=pydoc.plaintext)
    # What help() documents: "    class AiohttpSession(…" and "    build_ptb_request(…".
    documented = set(re.findall(r"^    (?:class )?(\w+)\(", text, re.MULTILINE))
    return {
        "dir": [name for name in LAZY if name in dir(botsession)],
        "help": [name for name in LAZY if name in documented],
        "star": [name for name in LAZY if name in star],
    }


def main() -> None:
    report = {
        "installed": [module for module in MODULES if importlib.util.find_spec(module)],
        "builders": asyncio.run(outcomes()),
        **listed(),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
