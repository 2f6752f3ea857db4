"""Settings from ``BOT_…`` environment variables (and keyword overrides), as layers.

Variables are ``<PREFIX><KEY>``, nested with ``__`` (``BOT_PROXY__PASSWORD``, ``BOT_API__BASE``);
a number (ASCII digits) picks a hop of a chain (``BOT_PROXY__0__PASSWORD``). A value that starts
with ``[`` or ``{`` (or is ``null``) is JSON, except for a ``…PASSWORD`` variable: a password is
always the text as written. JSON objects must not repeat a key. Names are matched without
regard to case, so two names that differ only in case (``BOT_PROXY``, ``bot_proxy``) are an
error rather than a silent choice. Variables whose first key is not a setting (``BOT_TOKEN``)
belong to the bot, not to botsession, and are left alone; one whose first key is one edit away
from a setting's name (``BOT_LIMT``) is left alone too, with a ``BotSessionWarning``.

``botsession.sources.dotenv`` reads a ``.env`` file into the same kind of layers.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import BotSessionWarning, Problem, outside_stacklevel
from ..redaction import is_secret_key
from .provenance import MAX_INTEGER_DIGITS, Layer, Origin, OriginKind, Path, shown_key

NESTED_DELIMITER = "__"
"""Separates nested keys in a variable's name (``BOT_PROXY__PASSWORD``)."""
_DELIMITER = NESTED_DELIMITER
MAX_VALUE_BYTES = 64 * 1024
"""Bound on one variable's value: a whole chain in JSON is well under a kilobyte."""
MAX_JSON_DEPTH = 32
"""As for YAML: a chain of fallbacks is 4 levels deep; thousands would exhaust the stack. A
variable's name nests keys at most as deep (``BOT_PROXY__0__PASSWORD`` is 3 levels)."""
_MAX_LISTED_NAMES = 5
_MAX_INDEX_DIGITS = 6
_LOADER_NAMES = ("CONFIG", "PROFILE")
"""Variables the loader reads itself (``BOT_CONFIG``, ``BOT_PROFILE``)."""


def env_prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot be an environment prefix, or None. A prefix without its ``_``
    (``MYBOT``) would make the variables ``MYBOTPROXY``, which no one means to write."""
    if not prefix or prefix.endswith("_"):
        return None
    shown = shown_key(prefix)
    return (
        f"the prefix {shown!r} does not end with '_': the variables would be named "
        f"{shown}PROXY, {shown}LIMIT, …; give {shown + '_'!r} for {shown}_PROXY"
    )


def environment_layers(
    environ: Mapping[str, str], prefix: str, fields: Iterable[str]
) -> list[Layer]:
    """One layer per ``<prefix>…`` variable naming one of ``fields`` (the settings), shorter
    keys first so nested ones refine them."""
    return variable_layers(
        (
            (name, value, f"environment variable {shown_key(name)}")
            for name, value in environ.items()
        ),
        prefix,
        fields,
        "env",
        lambda names: f"environment variables {names}",
    )


def override_layer(overrides: Mapping[str, Any]) -> Layer:
    """Keyword arguments: the highest precedence."""
    return Layer(
        "override",
        data=dict(overrides),
        origins={(key,): Origin("override", f"keyword argument {key}=") for key in overrides},
    )


def variable_layers(
    entries: Iterable[tuple[str, str, str]],
    prefix: str,
    fields: Iterable[str],
    kind: OriginKind,
    clash_label: Callable[[str], str],
) -> list[Layer]:
    """Layers of the ``<prefix>…`` settings among ``(name, value, label)`` entries.

    ``clash_label`` locates names that differ only in case (given them, listed).
    """
    fields = set(fields)
    found: list[tuple[Path, str, str, str]] = []
    layers: list[Layer] = []
    by_upper: dict[str, list[str]] = {}
    for name, raw, label in entries:
        if not name.upper().startswith(prefix.upper()):
            continue
        rest = name[len(prefix) :]
        segments = rest.lower().split(_DELIMITER)
        if segments[0] in fields or rest.upper() in _LOADER_NAMES:
            by_upper.setdefault(name.upper(), []).append(name)
        if segments[0] not in fields:
            _warn_if_misspelt(name, prefix, segments[0], fields, label)
            continue
        if any(part.isdigit() and not part.isascii() for part in segments):
            message = "hop and item numbers are written with the digits 0 to 9"
            layers.append(Layer(kind, problems=[Problem(label, "", message)]))
            continue
        if len(segments) > MAX_JSON_DEPTH:
            message = f"the name nests keys more than {MAX_JSON_DEPTH} levels deep"
            layers.append(Layer(kind, problems=[Problem(label, "", message)]))
            continue
        path: Path = tuple(_segment(part) for part in segments)
        found.append((path, name, raw, label))
    clashes = {upper: names for upper, names in by_upper.items() if len(names) > 1}
    layers += [_clash(sorted(names), clash_label, kind) for names in clashes.values()]
    found = [entry for entry in found if entry[1].upper() not in clashes]
    found.sort(key=lambda entry: (len(entry[0]), entry[1]))
    layers += [_variable_layer(path, name, raw, label, kind) for path, name, raw, label in found]
    return layers


_SHORTEST_GUESSED = 4
"""Only names at least this long are guessed at: a name of three letters is one edit away from
too many others (``api`` from ``app``, ``ssl`` from ``sql``), which are a bot's own settings."""


def _warn_if_misspelt(
    name: str, prefix: str, first: str, fields: Iterable[str], label: str
) -> None:
    """Warn about a variable left alone whose first key is one edit away from a setting
    (``BOT_LIMT``): silently ignored, it would look like a setting that does not work."""
    if not prefix:
        return  # every variable of the process would be guessed at
    candidates = [*fields, *(loader.lower() for loader in _LOADER_NAMES)]
    guesses = sorted(
        known
        for known in candidates
        if len(known) >= _SHORTEST_GUESSED and _one_edit_apart(first, known)
    )
    if not guesses:
        return
    rest = name[len(prefix) + len(first) :]
    meant = name[: len(prefix)] + guesses[0].upper() + rest
    warnings.warn(
        f"{label} is ignored: no botsession setting is called {shown_key(first.upper())}; "
        f"did you mean {shown_key(meant)}?",
        BotSessionWarning,
        stacklevel=outside_stacklevel(),
    )


def _one_edit_apart(one: str, other: str) -> bool:
    """Whether one insertion, deletion, substitution or swap of two neighbouring characters
    turns ``one`` into ``other`` (and they differ)."""
    if one == other or abs(len(one) - len(other)) > 1:
        return False
    start = 0
    while start < min(len(one), len(other)) and one[start] == other[start]:
        start += 1
    if len(one) == len(other):
        swapped = one[start + 1 : start + 2] + one[start : start + 1] + one[start + 2 :]
        return one[start + 1 :] == other[start + 1 :] or swapped == other[start:]
    shorter, longer = (one, other) if len(one) < len(other) else (other, one)
    return shorter[start:] == longer[start + 1 :]


def _segment(part: str) -> str | int:
    """A hop or item number (ASCII digits only: ``"²".isdigit()`` is true), else a key name."""
    if part.isascii() and part.isdigit() and len(part) <= _MAX_INDEX_DIGITS:
        return int(part)
    return part


def _clash(names: list[str], label: Callable[[str], str], kind: OriginKind) -> Layer:
    shown = [shown_key(name) for name in names[:_MAX_LISTED_NAMES]]
    if len(names) > len(shown):
        listed = ", ".join(shown) + f" and {len(names) - len(shown)} more"
    else:
        listed = ", ".join(shown[:-1]) + " and " + shown[-1]
    message = (
        "these names differ only in case; botsession reads names without regard to case, "
        "so set only one of them"
    )
    return Layer(kind, problems=[Problem(label(listed), "", message)])


def _variable_layer(path: Path, name: str, raw: str, label: str, kind: OriginKind) -> Layer:
    origin = Origin(kind, label)
    layer = Layer(kind, origins={path: origin}, variable=name)
    if "" in path:
        message = f"'{_DELIMITER}' must separate two key names"
        layer.problems.append(Problem(label, "", message))
        return layer
    try:
        value = _decode(raw, text_only=is_secret_key(path[-1]))
    except ValueError as error:
        layer.problems.append(Problem(label, "", str(error)))
        return layer
    nested: Any = value
    for segment in reversed(path[1:]):
        nested = {segment: nested}
    layer.data = {str(path[0]): nested}
    return layer


def _decode(raw: str, *, text_only: bool) -> Any:
    """The value of a variable: JSON when it looks like JSON (and may be), else the text."""
    size = len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_VALUE_BYTES:
        raise ValueError(f"the value is {size} bytes; the limit is {MAX_VALUE_BYTES}")
    stripped = raw.strip()
    if text_only or not (stripped[:1] in ("[", "{") or stripped == "null"):
        return raw
    _check_depth(stripped)
    try:
        return json.loads(
            stripped, object_pairs_hook=_object_without_duplicates, parse_int=_integer
        )
    except json.JSONDecodeError as error:
        # The document itself is not shown: it may hold a password.
        raise ValueError(
            f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:  # pragma: no cover - _check_depth stops far earlier
        raise ValueError(f"values are nested more than {MAX_JSON_DEPTH} levels deep") from None


def _check_depth(text: str) -> None:
    """Refuse JSON nested deeper than ``MAX_JSON_DEPTH`` before parsing it (linear scan)."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"values are nested more than {MAX_JSON_DEPTH} levels deep")
        elif char in "]}":
            depth -= 1


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise ValueError(
            f"not valid JSON for botsession: a number of {digits} digits; "
            f"numbers have at most {MAX_INTEGER_DIGITS}"
        )
    return int(text)


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Only the key is named: the values may be passwords.
            raise ValueError(
                f"not valid JSON for botsession: the key {shown_key(key)!r} appears twice"
            )
        result[key] = value
    return result
