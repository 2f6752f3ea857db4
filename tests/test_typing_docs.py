"""tests/typecheck_docs.py, which CI runs on README.md, docs/ and examples/: how it finds the
Python blocks of markdown files and reports mypy's findings at their markdown lines; and that
the code users write against botsession type-checks under ``mypy --strict``."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest

from .typecheck_docs import CodeBlock, check, markdown_files, python_blocks

needs_mypy = pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None,
    reason="mypy is a dev dependency; the suite on the oldest Python runs without it",
)

MARKDOWN = """\
# Title

```python
x: int = 1
```

```bash
echo not python
```

<!-- no-typecheck -->

```python
fragment(of, the, block, before)
```

1. In a list:

   ~~~py
   y = 2
   ~~~

```pycon
>>> for n in range(2): print(n)
0
1
```
"""


def test_python_blocks_are_found_with_their_lines_and_marks(tmp_path: Path) -> None:
    """Every python/py/pycon fence is a block, indented ones included, with the line of its first
    code line; a block after <!-- no-typecheck --> is marked; other languages are left out."""
    page = tmp_path / "page.md"
    page.write_text(MARKDOWN)
    assert python_blocks(page) == [
        CodeBlock(page, 4, "x: int = 1\n", skipped=False),
        CodeBlock(page, 14, "fragment(of, the, block, before)\n", skipped=True),
        CodeBlock(page, 20, "y = 2\n", skipped=False),
        CodeBlock(page, 24, "for n in range(2): print(n)\n\n\n", skipped=False),
    ]


def test_markdown_files_are_the_readme_and_everything_under_docs(tmp_path: Path) -> None:
    """README.md and docs/**/*.md, whichever exist."""
    assert markdown_files(tmp_path) == []
    (tmp_path / "README.md").write_text("# x\n")
    (tmp_path / "docs" / "guide").mkdir(parents=True)
    (tmp_path / "docs" / "index.md").write_text("# i\n")
    (tmp_path / "docs" / "guide" / "ptb.md").write_text("# p\n")
    (tmp_path / "docs" / "notes.txt").write_text("not markdown\n")
    assert markdown_files(tmp_path) == [
        tmp_path / "README.md",
        tmp_path / "docs" / "guide" / "ptb.md",
        tmp_path / "docs" / "index.md",
    ]


@needs_mypy
def test_an_error_is_reported_at_its_markdown_line(tmp_path: Path) -> None:
    """A block that does not type-check fails the check, the error shown at the markdown file's
    line; a block marked no-typecheck is not checked, and a top-level await is allowed."""
    page = tmp_path / "page.md"
    page.write_text(
        textwrap.dedent(
            """\
            Intro.

            ```python
            import asyncio

            count: int = "three"
            await asyncio.sleep(0)
            ```

            <!-- no-typecheck -->
            ```python
            undefined_name()
            ```
            """
        )
    )
    passed, messages = check([page])
    assert not passed
    errors = [message for message in messages if ": error:" in message]
    assert len(errors) == 1, messages
    assert errors[0].startswith(f"{page}:6: error: Incompatible types in assignment")


ROUTE_STATUS_EVERYWHERE = """
```python
import httpx
from aiogram import Bot
from telegram.ext import ApplicationBuilder

from botsession import (
    RouteStatus,
    build_client_session,
    build_httpx_client,
    build_httpx_transport,
    build_ptb_request,
    build_session_from_config,
    configure_application,
    route_status,
)


async def every_way() -> list[RouteStatus]:
    session = build_session_from_config("bot.yaml")
    bot = Bot("42:token", session=session)
    application = configure_application(ApplicationBuilder().token("42:token"), "bot.yaml").build()
    transport = build_httpx_transport("bot.yaml")
    statuses = [*session.route_status(), *transport.route_status()]
    statuses += build_ptb_request("bot.yaml").route_status()
    async with build_httpx_client("bot.yaml") as client:
        statuses += client.route_status()
        statuses += route_status(client)
    async with build_client_session("bot.yaml") as plain:
        statuses += route_status(plain)
    async with httpx.AsyncClient(transport=transport) as own:
        statuses += route_status(own)
    return statuses + route_status(bot) + route_status(application) + route_status(transport)
```
"""


@needs_mypy
def test_every_way_to_route_status_type_checks(tmp_path: Path) -> None:
    """What each builder returns, and route_status(obj) on what users hold, pass mypy --strict."""
    page = tmp_path / "status.md"
    page.write_text(ROUTE_STATUS_EVERYWHERE)
    passed, messages = check([page])
    assert passed, "\n".join(messages)
