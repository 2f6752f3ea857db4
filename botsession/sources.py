"""Settings from the environment, a ``.env`` file and keyword overrides, as layers.

Variables are ``<PREFIX><KEY>``, nested with ``__`` (``BOT_PROXY__PASSWORD``, ``BOT_API__BASE``);
a number picks a hop of a chain (``BOT_PROXY__0__PASSWORD``). A value that starts with ``[`` or
``{`` (or is ``null``) is JSON. Variables whose first key is not a setting (``BOT_TOKEN``) belong
to the bot, not to botsession, and are left alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path as FsPath
from typing import Any

from dotenv import dotenv_values

from .config_schema import BotSessionConfig
from .errors import Problem
from .layers import Layer, Origin, OriginKind, Path

_DELIMITER: str = BotSessionConfig.model_config.get("env_nested_delimiter") or "__"
MAX_VALUE_BYTES = 64 * 1024
"""Bound on one variable's value: a whole chain in JSON is well under a kilobyte."""


def environment_layers(environ: Mapping[str, str], prefix: str) -> list[Layer]:
    """One layer per ``<prefix>…`` variable, shorter keys first so nested ones refine them."""
    return _variable_layers(
        ((name, value, f"environment variable {name}") for name, value in environ.items()),
        prefix,
        "env",
    )


def dotenv_layers(path: FsPath, shown_as: str, prefix: str) -> tuple[list[Layer], dict[str, str]]:
    """Layers from a ``.env`` file, plus all its values (for ``${VAR}`` in YAML)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        return [Layer("dotenv", problems=[Problem(shown_as, "", f"cannot read: {reason}")])], {}
    values = {name: value for name, value in dotenv_values(path).items() if value is not None}
    lines = _line_numbers(text)
    entries = (
        (name, value, f"{shown_as}:{lines.get(name, 1)} ({name})") for name, value in values.items()
    )
    return _variable_layers(entries, prefix, "dotenv"), values


def override_layer(overrides: Mapping[str, Any]) -> Layer:
    """Keyword arguments: the highest precedence."""
    return Layer(
        "override",
        data=dict(overrides),
        origins={(key,): Origin("override", f"keyword argument {key}=") for key in overrides},
    )


def _variable_layers(
    entries: Iterable[tuple[str, str, str]], prefix: str, kind: OriginKind
) -> list[Layer]:
    fields = set(BotSessionConfig.model_fields)
    found: list[tuple[Path, str, str, str]] = []
    for name, raw, label in entries:
        if not name.upper().startswith(prefix.upper()):
            continue
        segments = name[len(prefix) :].lower().split(_DELIMITER)
        if segments[0] not in fields:
            continue
        path: Path = tuple(int(part) if part.isdigit() else part for part in segments)
        found.append((path, name, raw, label))
    found.sort(key=lambda entry: (len(entry[0]), entry[1]))
    return [_variable_layer(path, name, raw, label, kind) for path, name, raw, label in found]


def _variable_layer(path: Path, name: str, raw: str, label: str, kind: OriginKind) -> Layer:
    origin = Origin(kind, label)
    layer = Layer(kind, origins={path: origin}, variable=name)
    if "" in path:
        message = f"'{_DELIMITER}' must separate two key names"
        layer.problems.append(Problem(label, "", message))
        return layer
    try:
        value = _decode(raw)
    except ValueError as error:
        layer.problems.append(Problem(label, "", str(error)))
        return layer
    nested: Any = value
    for segment in reversed(path[1:]):
        nested = {segment: nested}
    layer.data = {str(path[0]): nested}
    return layer


def _decode(raw: str) -> Any:
    size = len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_VALUE_BYTES:
        raise ValueError(f"the value is {size} bytes; the limit is {MAX_VALUE_BYTES}")
    stripped = raw.strip()
    if not (stripped[:1] in ("[", "{") or stripped == "null"):
        return raw
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as error:
        # The document itself is not shown: it may hold a password.
        raise ValueError(
            f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise ValueError("not valid JSON: nested too deeply") from None


_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=")


def _line_numbers(text: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _ASSIGNMENT.match(line)
        if match:
            lines[match.group(1)] = number  # the last assignment wins, as in python-dotenv
    return lines
