"""Settings from a ``.env`` file, as layers (the same names and rules as the environment).

The file is read as text (a regular file of at most 1 MiB), and ``${VAR}`` in it is kept
literally: python-dotenv's expansion is turned off, so a password holding ``${`` stays intact.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from pathlib import Path as FsPath

from dotenv import dotenv_values

from ..errors import Problem
from .environment import variable_layers
from .files import UnreadableFile, read_regular_file
from .provenance import Layer, shown_key

MAX_DOTENV_BYTES = 1024 * 1024


def dotenv_layers(
    path: FsPath, shown_as: str, prefix: str, fields: Iterable[str]
) -> tuple[list[Layer], dict[str, str]]:
    """Layers from a ``.env`` file, plus all its values (for ``${VAR}`` in YAML)."""
    try:
        text = read_regular_file(path, MAX_DOTENV_BYTES, "the dotenv file").data.decode("utf-8")
    except (UnreadableFile, UnicodeDecodeError) as error:
        reason = error.message if isinstance(error, UnreadableFile) else "not UTF-8 text"
        return [Layer("dotenv", problems=[Problem(shown_as, "", reason)])], {}
    parsed = dotenv_values(stream=io.StringIO(text), interpolate=False)
    values = {name: value for name, value in parsed.items() if value is not None}
    lines = _line_numbers(text)
    entries = (
        (name, value, f"{shown_as}:{lines.get(name, 1)} ({shown_key(name)})")
        for name, value in values.items()
    )
    layers = variable_layers(
        entries, prefix, fields, "dotenv", lambda names: f"{shown_as} ({names})"
    )
    return layers, values


_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=")


def _line_numbers(text: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _ASSIGNMENT.match(line)
        if match:
            lines[match.group(1)] = number  # the last assignment wins, as in python-dotenv
    return lines
