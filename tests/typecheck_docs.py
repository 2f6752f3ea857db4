"""Type-check the documentation's Python code and the example bots with ``mypy --strict``.

    python tests/typecheck_docs.py              # README.md, docs/**/*.md and examples/
    python tests/typecheck_docs.py A.md B.md    # these markdown files, and examples/

Every fenced block marked ``python`` (or ``py``) becomes a module of its own, checked as a user
who pastes it into a file would check it; errors are reported at the markdown file and line.
A block may ``await`` at the top level (as in ``python -m asyncio``); ``>>>`` blocks are
checked as the code they type, their output left out. A block that cannot stand alone (a
fragment of the block before it) is skipped when the line before its fence is
``<!-- no-typecheck -->``. Exit status: 0 when mypy finds nothing, 1 otherwise.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP_MARK = "<!-- no-typecheck -->"
HEADER = '# mypy: disable-error-code="top-level-await"\n'
"""The first line of each block's module: a snippet may await at the top level."""
_OPENING = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\s`]*)")
_PYTHON = {"python", "py", "python3", "pycon"}
_MYPY_LINE = re.compile(r"^(?P<path>[^:\n]+\.py):(?P<line>\d+):(?P<rest>.*)$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced Python block: where its first line of code is and what it says."""

    markdown: Path
    line: int
    """The markdown line (from 1) of the block's first line of code."""
    code: str
    skipped: bool
    """Marked ``<!-- no-typecheck -->``: not checked."""

    @property
    def module_name(self) -> str:
        stem = re.sub(r"\W", "_", self.markdown.name)
        return f"{stem}_line{self.line}"


def python_blocks(markdown: Path) -> list[CodeBlock]:
    """The fenced Python blocks of ``markdown``, in order."""
    lines = markdown.read_text(encoding="utf-8").splitlines()
    blocks: list[CodeBlock] = []
    index = 0
    while index < len(lines):
        opening = _OPENING.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        body = [_dedented(line, indent) for line in lines[index + 1 : end]]
        if opening["info"].lower() in _PYTHON and not _included(body):
            blocks.append(
                CodeBlock(
                    markdown=markdown,
                    line=index + 2,
                    code=_code_of(body),
                    skipped=_marked_skip(lines, index),
                )
            )
        index = end + 1
    return blocks


def _included(body: list[str]) -> bool:
    """Whether the block only pulls in files (``--8<-- "examples/…"``, the docs' snippets):
    those files are checked on their own."""
    code = [line.strip() for line in body if line.strip()]
    return bool(code) and all(line.startswith("--8<--") for line in code)


def _dedented(line: str, indent: str) -> str:
    return line[len(indent) :] if line.startswith(indent) else line.lstrip()


def _marked_skip(lines: Sequence[str], fence_index: int) -> bool:
    before = [line.strip() for line in lines[:fence_index] if line.strip()]
    return bool(before) and before[-1] == SKIP_MARK


def _code_of(body: list[str]) -> str:
    """The block's code; for an interactive session (``>>>``), what was typed, each output
    line left blank so that line numbers still match the markdown."""
    if not any(line.startswith(">>>") for line in body):
        return "\n".join(body) + "\n"
    typed = [line[4:] if line.startswith((">>> ", "... ")) else "" for line in body]
    return "\n".join(typed) + "\n"


def write_modules(blocks: Iterable[CodeBlock], folder: Path) -> dict[Path, CodeBlock]:
    """Each checked block as a module in ``folder``; returns which module is which block."""
    written: dict[Path, CodeBlock] = {}
    for block in blocks:
        if block.skipped:
            continue
        path = folder / f"{block.module_name}.py"
        path.write_text(HEADER + block.code, encoding="utf-8")
        written[path] = block
    return written


def markdown_files(root: Path = ROOT) -> list[Path]:
    """README.md and every markdown file under docs/, if that folder exists."""
    files = [root / "README.md"]
    files += sorted((root / "docs").rglob("*.md"))
    return [path for path in files if path.is_file()]


def run_mypy(paths: Sequence[Path], cwd: Path = ROOT) -> tuple[int, str]:
    """``mypy --strict`` on ``paths`` with the project's settings (pyproject.toml)."""
    command = [sys.executable, "-m", "mypy", "--strict", "--no-error-summary"]
    command += [str(path) for path in paths]
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)
    return result.returncode, result.stdout + result.stderr


def located(output: str, modules: dict[Path, CodeBlock]) -> list[str]:
    """mypy's report with each block's module replaced by its markdown file and line."""
    by_name = {path.name: block for path, block in modules.items()}
    lines: list[str] = []
    for line in output.splitlines():
        match = _MYPY_LINE.match(line)
        block = by_name.get(Path(match["path"]).name) if match else None
        if match is None or block is None:
            lines.append(line)
            continue
        # The module's line 1 is the header; its line 2 is the block's first line.
        where = block.line + int(match["line"]) - 2
        lines.append(f"{_shown(block.markdown)}:{where}:{match['rest']}")
    return lines


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def check(markdown: Sequence[Path], extra: Sequence[Path] = ()) -> tuple[bool, list[str]]:
    """Whether the Python blocks of ``markdown`` and the files ``extra`` type-check, and
    mypy's messages (blocks located in their markdown files)."""
    blocks = [block for path in markdown for block in python_blocks(path)]
    with tempfile.TemporaryDirectory(prefix="botsession-docs-") as folder:
        modules = write_modules(blocks, Path(folder))
        status, output = run_mypy([*modules, *extra])
        return status == 0, located(output, modules)


def _position(message: str) -> tuple[str, int]:
    """Where a message points (file, line), to list them in reading order."""
    path, _, rest = message.partition(":")
    line = rest.partition(":")[0]
    return path, int(line) if line.isdigit() else 0


def main(arguments: Sequence[str]) -> int:
    markdown = [Path(argument) for argument in arguments] or markdown_files()
    passed, messages = check(markdown, [ROOT / "examples"])
    for message in sorted(messages, key=_position):
        print(message)
    blocks = [block for path in markdown for block in python_blocks(path)]
    skipped = sum(block.skipped for block in blocks)
    files = ", ".join(_shown(path) for path in markdown)
    print(
        f"{'ok' if passed else 'FAILED'}: {len(blocks) - skipped} Python blocks of {files} "
        f"({skipped} marked no-typecheck) and examples/ under mypy --strict"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
