"""pydantic's validation errors, told as problems of what the user wrote, where they wrote it."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from ..errors import ConfigError, Problem
from ..redaction import collect_secrets, describe_value, scrub_texts
from .provenance import HOP_KEYS, ROUTE_KEYS, Path, Stack, format_path, shown_key

MAX_PROBLEMS = 100
"""Problems a ConfigError lists; past that it says how many more there are. A file of
unknown keys can have tens of thousands, and no one reads beyond the first screens."""
_CUSTOM_TYPES = {"botsession", "proxy_url", "api_base", "empty_route", "long_route"}
_INPUT_SHOULD = re.compile(r"^(Input|Value|Tuple|List|String) should (be|have)\b")


def problem_of(detail: ErrorDetails, stack: Stack, settings_cls: type[BaseModel]) -> Problem:
    """One pydantic error as a problem located where the value was written."""
    path = _user_path(tuple(detail["loc"]), stack.data)
    kind = detail["type"]
    if kind == "extra_forbidden":
        origin = stack.key_origin_of(path)
        return Problem(origin.label, format_path(path), _unknown_key(path, settings_cls))
    origin = stack.origin_of(path)
    if kind == "missing" and origin.kind == "default":
        # A mapping made only of values set below it (BOT_PROXY__USERNAME): name the first.
        below = stack.origins.below(path[:-1])
        origin = below[0][1] if below else origin
    message = (
        _INPUT_SHOULD.sub("expected", detail["msg"]) if kind not in _CUSTOM_TYPES else detail["msg"]
    )
    if kind == "missing":
        message = "this setting is required here"
    elif kind not in _CUSTOM_TYPES or (kind == "botsession" and _shows_found(detail)):
        message += f", found {describe_value(path, detail['input'])}"
    return Problem(origin.label, format_path(path), message)


def _shows_found(detail: ErrorDetails) -> bool:
    return isinstance(detail["input"], (int, float, bool))


def _user_path(loc: tuple[Any, ...], data: Any) -> Path:
    """Map pydantic's location to the place in the input the user wrote.

    pydantic sees every route as a list and every hop as a mapping; where the user wrote a
    single hop or a bare URL, the index or the ``url`` key is dropped again.
    """
    path: list[str | int] = []
    node = data
    for segment in loc:
        if isinstance(segment, int):
            if isinstance(node, (list, tuple)) and 0 <= segment < len(node):
                path.append(segment)
                node = node[segment]
            elif not isinstance(node, (str, Mapping)):
                path.append(segment)
                node = None
            continue
        if not isinstance(segment, str):
            continue
        if segment == "root" and not (isinstance(node, Mapping) and "root" in node):
            continue  # pydantic's name for a RootModel's value (a route), not a key
        if isinstance(node, str):
            continue  # a URL stands for the whole hop
        path.append(segment)
        node = node.get(segment) if isinstance(node, Mapping) else None
    return tuple(path)


def _unknown_key(path: Path, settings_cls: type[BaseModel]) -> str:
    key = str(path[-1])
    known = _known_keys(path[:-1], settings_cls)
    guess = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean {guess[0]!r}?" if guess else f"; known keys: {', '.join(known)}"
    return f"unknown setting {shown_key(key)!r}{hint}"


def _known_keys(parent: Path, settings_cls: type[BaseModel]) -> list[str]:
    model: type[BaseModel] = settings_cls
    for segment in parent:
        if isinstance(segment, int):
            continue
        if segment in ROUTE_KEYS:
            return list(HOP_KEYS)  # inside a route, keys belong to a hop
        annotation = (
            model.model_fields[segment].annotation if segment in model.model_fields else None
        )
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return list(model.model_fields)


def redacted_error(problems: Iterable[Problem], data: Any) -> ConfigError:
    """A ConfigError of ``problems`` (the first ``MAX_PROBLEMS``) with every secret found in
    the raw ``data`` masked."""
    found = list(problems)
    shown = found[:MAX_PROBLEMS]
    texts = [text for problem in shown for text in (problem.where, problem.path, problem.message)]
    scrubbed = scrub_texts(texts, collect_secrets(data))
    if scrubbed is None:
        message = (
            f"{len(found)} problems, not shown: the configuration holds thousands of passwords "
            "that resemble the text of the messages"
        )
        return ConfigError([Problem("the configuration", "", message)])
    result = [Problem(*scrubbed[index : index + 3]) for index in range(0, len(scrubbed), 3)]
    if len(found) > len(shown):
        more = len(found) - len(shown)
        message = f"not shown (the first {len(shown)} are above)"
        result.append(Problem(f"{more} more problem{'s' if more > 1 else ''}", "", message))
    return ConfigError(result)
