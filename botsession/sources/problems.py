"""pydantic's validation errors, told as problems of what the user wrote, where they wrote it."""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from os import PathLike
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from ..errors import ConfigError, Problem
from ..redaction import (
    MASK,
    collect_secrets,
    describe_value,
    is_secret_key,
    redact_url,
    scrub_texts,
)
from .provenance import HOP_KEYS, ROUTE_KEYS, Path, Stack, format_path, shown_key

MAX_PROBLEMS = 100
"""Problems a ConfigError lists; past that it says how many more there are. A file of
unknown keys can have tens of thousands, and no one reads beyond the first screens."""
_CUSTOM_TYPES = {"botsession", "proxy_url", "api_base", "empty_route", "long_route"}
_INPUT_SHOULD = re.compile(r"^(Input|Value|Tuple|List|String) should (be|have)\b")


def problem_of(detail: ErrorDetails, stack: Stack, settings_cls: type[BaseModel]) -> Problem:
    """One pydantic error as a problem located where the value was written."""
    path = user_path(tuple(detail["loc"]), stack.data)
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


def user_path(loc: tuple[Any, ...], data: Any) -> Path:
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


_POSITION = re.compile(r"^(?P<source>.+?):(?P<line>[0-9]+)(?::(?P<column>[0-9]+))?(?= \(|$)")
_WITHOUT_LINES = ("environment variable", "keyword argument")
"""Sources that have no lines, after the files, in the order of precedence (lowest first, as
the layers are stacked): their problems keep the order they were found in (the schema's)."""


def position_of(problem: Problem) -> tuple[int, str, int, int]:
    """Where a problem was written, to sort by: files first, by name, line and column
    (``bot.yaml:5:3``, ``.env:2 (BOT_LIMIT)``; a whole file is at line 0), then the
    environment, then keyword arguments."""
    for rank, kind in enumerate(_WITHOUT_LINES, start=1):
        if problem.where.startswith(kind):
            return rank, "", 0, 0
    match = _POSITION.match(problem.where)
    if match is None:
        return 0, problem.where, 0, 0
    return 0, match["source"], int(match["line"]), int(match["column"] or 0)


def redacted_error(problems: Iterable[Problem], data: Any, *, more: int = 0) -> ConfigError:
    """A ConfigError of ``problems`` in the order they were written (``position_of``; the
    first ``MAX_PROBLEMS``, and a count of the rest and of ``more`` not worded) with every
    secret found in the raw ``data`` masked."""
    found = sorted(problems, key=position_of)
    shown = found[:MAX_PROBLEMS]
    texts = [text for problem in shown for text in (problem.where, problem.path, problem.message)]
    scrubbed = scrub_texts(texts, collect_secrets(data))
    if scrubbed is None:
        message = (
            f"{len(found) + more} problems, not shown: the configuration holds thousands of "
            "passwords that resemble the text of the messages"
        )
        return ConfigError([Problem("the configuration", "", message)])
    result = [Problem(*scrubbed[index : index + 3]) for index in range(0, len(scrubbed), 3)]
    hidden = len(found) - len(shown) + more
    if hidden:
        message = f"not shown (the first {len(shown)} are above)"
        result.append(Problem(f"{hidden} more problem{'s' if hidden > 1 else ''}", "", message))
    return ConfigError(result)


# --- errors raised inside an enclosing model ---------------------------------------------------

_KNOWN_TYPES = frozenset(typing.get_args(ErrorType))
_MAX_DEPTH = 20


def masked_error(error: ValidationError, raw: Any) -> ValidationError:
    """``error`` again, with every input and context value that could hold a secret masked.

    pydantic copies each error's input into the error of a model that encloses this one (an
    application's settings) and shows it there unless that model hides input; ``.errors()`` and
    ``.json()`` hold it either way. ``raw`` is the input that was validated: the secrets found in
    it (passwords, URL passwords, values of misspelt keys) are masked wherever they appear.

    The texts to clean are gathered first and cleaned together (``scrub_texts``), so thousands
    of errors, each with its own password, cost their length, not errors times passwords.
    """
    details = error.errors(include_url=False)
    secrets = collect_secrets(raw)
    for detail in details:
        if detail["type"] == "extra_forbidden":  # a misspelt key: its value may be a password
            secrets.update(_strings_in(detail["input"], 0))
    gathered: dict[str, str] = {}
    _Masker(secrets, gathered.setdefault).details(details)  # only gathers the texts
    texts = list(gathered)
    cleaned = scrub_texts(texts, secrets)
    clean = dict(zip(texts, cleaned or [MASK] * len(texts), strict=True))
    masker = _Masker(secrets, lambda text, _unused: clean[text])
    masked = masker.details(details)
    try:
        return ValidationError.from_exception_data(error.title, masked, hide_input=True)
    except (KeyError, TypeError, ValueError):  # pragma: no cover - defensive
        # A known error type whose masked context pydantic refuses to format again: keep the
        # messages as they were rather than turn a validation error into a TypeError.
        fallback = [masker.as_custom(detail) for detail in details]
        return ValidationError.from_exception_data(error.title, fallback, hide_input=True)


class _Masker:
    """Masks the details of a validation error; ``clean(text, text)`` gives a text without
    the secrets (or, on a first pass, gathers it)."""

    def __init__(self, secrets: set[str], clean: Callable[[str, str], str]) -> None:
        self.secrets = secrets
        self.clean = clean

    def details(self, details: list[ErrorDetails]) -> list[InitErrorDetails]:
        return [self.detail(detail) for detail in details]

    def detail(self, detail: ErrorDetails) -> InitErrorDetails:
        if detail["type"] not in _KNOWN_TYPES:
            return self.as_custom(detail)
        masked = InitErrorDetails(
            type=detail["type"],
            loc=detail["loc"],
            input=self.input(detail),
        )
        if "ctx" in detail:
            masked["ctx"] = self.context(detail["ctx"])
        return masked

    def as_custom(self, detail: ErrorDetails) -> InitErrorDetails:
        """The error as a custom one: its message as it was, without pydantic formatting it
        again."""
        message = self.text(detail["msg"])
        context = self.context(detail["ctx"]) if "ctx" in detail else None
        return InitErrorDetails(
            type=PydanticCustomError(detail["type"], message, context),
            loc=detail["loc"],
            input=self.input(detail),
        )

    def input(self, detail: ErrorDetails) -> Any:
        loc = detail["loc"]
        if detail["type"] == "extra_forbidden" or (loc and is_secret_key(loc[-1])):
            return MASK
        return self.value(detail["input"], 0)

    def context(self, context: dict[str, Any]) -> dict[str, Any]:
        # An exception in the context (value_error's "error") becomes its masked message.
        return {
            key: self.value(str(value) if isinstance(value, BaseException) else value, 0)
            for key, value in context.items()
        }

    def text(self, text: str) -> str:
        return self.clean(text, text)

    def value(self, value: Any, depth: int) -> Any:
        """A copy of an input value with the secrets masked; objects that are not plain data
        become their masked description."""
        if value is None or isinstance(value, (bool, int, float, SecretStr, SecretBytes, PathLike)):
            return value
        if isinstance(value, str):
            return MASK if value in self.secrets else self.text(redact_url(value, value=True))
        if depth >= _MAX_DEPTH:
            return MASK
        if isinstance(value, Mapping):
            return {
                self.value(key, depth + 1): (
                    MASK if is_secret_key(key) else self.value(item, depth + 1)
                )
                for key, item in value.items()
            }
        if isinstance(value, (list, tuple, set, frozenset)) and not hasattr(value, "_fields"):
            items = [self.value(item, depth + 1) for item in value]
            return tuple(items) if isinstance(value, tuple) else items
        return self.described(value)

    def described(self, value: object) -> object:
        """An object that is not plain data: itself when its repr shows no secret, else its
        repr with URL passwords masked, or only its type if that still shows one (a
        BasicAuth's password)."""
        shown = repr(value)
        masked = redact_url(shown, value=True)
        if self.text(masked) != masked:
            return f"a {type(value).__name__} object"
        return value if masked == shown else masked


def _strings_in(value: Any, depth: int) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif depth < _MAX_DEPTH and isinstance(value, Mapping):
        for item in value.values():
            yield from _strings_in(item, depth + 1)
    elif depth < _MAX_DEPTH and isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _strings_in(item, depth + 1)
