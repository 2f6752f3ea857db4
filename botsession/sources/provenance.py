"""Configuration layers and how they stack.

Each source (YAML file, ``.env``, environment, keyword overrides) yields a ``Layer``: raw data
plus the ``Origin`` of every value it supplied. ``stack`` merges them, lowest precedence first,
keeping for every value the origin that won — that is what error messages and ``show`` report.

Merging is linear in the size of the layers, however many there are (a ``.env`` file may hold
tens of thousands of variables): origins are kept in an ``Origins`` table that finds those at or
below a path without looking at the others, and the stack changes the mappings and lists it
made itself in place instead of copying them for every layer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from ..errors import Problem
from ..redaction import redact_url

Path = tuple[str | int, ...]
OriginKind = Literal["default", "yaml", "dotenv", "env", "override", "object"]

ROUTE_KEYS = frozenset({"proxy", "fallback"})
"""Top-level keys that hold proxy routes: ``proxy`` is one, ``fallback`` a list of them."""
HOP_KEYS = ("url", "username", "password", "password_file", "rdns", "ca_file", "verify")
"""The keys of a hop written as a mapping (``config_schema.HopSpec``; a test keeps them equal)."""


def is_route_path(path: Path) -> bool:
    """Whether ``path`` holds one route (a hop or a list of hops)."""
    if path == ("proxy",):
        return True
    return len(path) == 2 and path[0] == "fallback" and isinstance(path[1], int)


@dataclass(frozen=True)
class Origin:
    """Where a value came from: ``kind`` plus a human label such as ``bot.yaml:5:5``."""

    kind: OriginKind
    label: str

    def __str__(self) -> str:
        return self.label


DEFAULT_ORIGIN = Origin("default", "default")
_Container = TypeVar("_Container", dict[Any, Any], list[Any])


class Origins(MutableMapping[Path, Origin]):
    """Origins by path, which also lists or drops those at or below a path in time
    proportional to their number (a plain dict would have to look at every path)."""

    def __init__(self, items: Mapping[Path, Origin] | None = None) -> None:
        self._origins: dict[Path, Origin] = {}
        self._children: dict[Path, dict[Path, None]] = {}
        """For each path, the child paths with an origin at or below them (ordered set)."""
        if items:
            self.update(items)

    def __getitem__(self, path: Path) -> Origin:
        return self._origins[path]

    def __setitem__(self, path: Path, origin: Origin) -> None:
        if path not in self._origins:
            self._link(path)
        self._origins[path] = origin

    def __delitem__(self, path: Path) -> None:
        del self._origins[path]
        self._unlink(path)

    def __iter__(self) -> Iterator[Path]:
        return iter(self._origins)

    def __len__(self) -> int:
        return len(self._origins)

    def __repr__(self) -> str:
        return f"Origins({self._origins!r})"

    def below(self, path: Path) -> list[tuple[Path, Origin]]:
        """The ``(path, origin)`` pairs at ``path`` and below it."""
        found: list[tuple[Path, Origin]] = []
        pending = [path]
        while pending:
            current = pending.pop()
            origin = self._origins.get(current)
            if origin is not None:
                found.append((current, origin))
            pending.extend(reversed(self._children.get(current, {})))
        return found

    def drop_below(self, path: Path) -> None:
        """Forget the origins at ``path`` and below it."""
        for known, _ in self.below(path):
            del self[known]

    def _link(self, path: Path) -> None:
        while path:
            parent = path[:-1]
            children = self._children.setdefault(parent, {})
            if path in children:
                return
            children[path] = None
            path = parent

    def _unlink(self, path: Path) -> None:
        while path and path not in self._origins and not self._children.get(path):
            self._children.pop(path, None)
            parent = path[:-1]
            siblings = self._children[parent]
            del siblings[path]
            if not siblings:
                del self._children[parent]
            path = parent


_INDEXED = 8
"""A layer with more origins than this is indexed (an ``Origins``) before it is merged;
smaller ones (one per variable) are cheaper to look through."""


def _origins_below(layer: Layer, path: Path) -> list[tuple[Path, Origin]]:
    """The origins the layer supplied at ``path`` and below it."""
    origins = layer.origins
    if isinstance(origins, Origins):
        return origins.below(path)
    size = len(path)
    return [(known, origin) for known, origin in origins.items() if known[:size] == path]


@dataclass
class Layer:
    """The raw values one source supplied, with their origins and any reading problems."""

    kind: OriginKind
    data: dict[str, Any] = field(default_factory=dict)
    origins: MutableMapping[Path, Origin] = field(default_factory=dict)
    key_origins: dict[Path, Origin] = field(default_factory=dict)
    """Where keys were written (YAML only); an unknown key is reported at its key."""
    problems: list[Problem] = field(default_factory=list)
    variable: str | None = None
    """The variable name, for a layer made from one environment variable."""
    value_problems: list[tuple[Origin, Problem]] = field(default_factory=list)
    """Problems of one value (an unset ``${VAR}`` in it), by the value's origin: reported only
    if that value is still in effect once every layer is stacked (an override replaces it)."""


MAX_INTEGER_DIGITS = 100
"""Bound on an integer's digits in YAML and in JSON from variables: settings need a few, and
Python refuses to convert more than 4,300 (``sys.get_int_max_str_digits``)."""
MAX_SHOWN_KEY = 64
"""Keys and variable names longer than this are cut short in messages (a 1 MiB key, shown in
each message about it, would only bury the message)."""


def shown_key(key: str) -> str:
    """A key (or a variable's name) as messages show it: a URL password in it masked, and
    cut to ``MAX_SHOWN_KEY`` characters (masked first, so no part of the password shows)."""
    if len(key) <= MAX_SHOWN_KEY:
        return key  # short: whole messages are masked again before they are shown
    shown = redact_url(key, value=True)
    return shown if len(shown) <= MAX_SHOWN_KEY else shown[: MAX_SHOWN_KEY - 3] + "..."


def format_path(path: Path) -> str:
    """``("proxy", 1, "url")`` → ``proxy[1].url`` (long keys cut short, see ``shown_key``)."""
    parts: list[str] = []
    for segment in path:
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
        else:
            parts.append(f".{shown_key(segment)}" if parts else shown_key(segment))
    return "".join(parts)


@dataclass
class Stack:
    """The merged result of all layers so far."""

    config_file: str | None = None
    """The YAML file that was read, as the user named it."""
    profile: str | None = None
    """The profile of that file in use, and who chose it."""
    profile_origin: Origin | None = None
    data: dict[str, Any] = field(default_factory=dict)
    origins: Origins = field(default_factory=Origins)
    key_origins: dict[Path, Origin] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    value_problems: list[tuple[Origin, Problem]] = field(default_factory=list)
    """Problems of values, kept until ``settle`` finds which of those values are in effect."""
    unread: set[Path] = field(default_factory=set)
    """Paths of values that could not be read (an unset ``${VAR}``), once settled: their
    problem is reported, and validation errors about them would only repeat it."""
    _made: dict[int, Any] = field(default_factory=dict, repr=False, compare=False)
    """The mappings and lists this stack made (by id; held, so no id is reused): those it may
    change in place. Values taken from a layer are copied before their first change."""

    def push(self, layer: Layer) -> None:
        """Lay ``layer`` over what is there: its values win, mappings merge key by key."""
        if len(layer.origins) > _INDEXED and not isinstance(layer.origins, Origins):
            layer.origins = Origins(layer.origins)
        self.problems.extend(layer.problems)
        self.value_problems.extend(layer.value_problems)
        self.key_origins.update(layer.key_origins)
        for key, value in layer.data.items():
            path: Path = (key,)
            self.data[key] = self._merge(path, path, self.data.get(key, _MISSING), value, layer)

    def settle(self) -> None:
        """Once every layer is stacked: report the problems of the values still in effect, and
        drop those of values another layer replaced (``load_config(proxy=…)`` over a file
        whose proxy has an unset ``${VAR}``)."""
        in_effect = set(self.origins.values())
        failed: set[Origin] = set()
        for origin, problem in self.value_problems:
            if origin in in_effect:
                self.problems.append(problem)
                failed.add(origin)
        self.value_problems = []
        self.unread = {path for path, origin in self.origins.items() if origin in failed}

    def is_unread(self, path: Path) -> bool:
        """Whether ``path`` is, or lies inside, a value that could not be read."""
        return any(path[: len(unread)] == unread for unread in self.unread)

    def origin_of(self, path: Path) -> Origin:
        """The origin of the value at ``path`` or of the closest enclosing value."""
        for end in range(len(path), 0, -1):
            origin = self.origins.get(path[:end])
            if origin is not None:
                return origin
        return DEFAULT_ORIGIN

    def key_origin_of(self, path: Path) -> Origin:
        """Where the key at ``path`` was written, falling back to the value's origin."""
        return self.key_origins.get(path) or self.origin_of(path)

    # ``dst`` is where a value lands in the stack, ``src`` where the layer recorded it; they
    # differ when a single hop's settings (PROXY__PASSWORD) land in a one-hop list.
    def _merge(self, dst: Path, src: Path, lower: Any, upper: Any, layer: Layer) -> Any:
        if is_route_path(dst) and isinstance(upper, Mapping):
            return self._merge_into_route(dst, lower, upper, layer)
        if isinstance(lower, list) and _indexed(upper):
            return self._merge_by_index(dst, src, lower, upper, layer)
        if isinstance(lower, dict) and isinstance(upper, Mapping):
            merged = self._own(lower)
            if src in layer.origins:
                self.origins[dst] = layer.origins[src]
            for key, value in upper.items():
                merged[key] = self._merge(
                    (*dst, key), (*src, key), lower.get(key, _MISSING), value, layer
                )
            return merged
        self._replace_origins(dst, src, layer)
        return upper

    def _merge_by_index(
        self, dst: Path, src: Path, lower: list[Any], upper: Any, layer: Layer
    ) -> list[Any]:
        """``BOT_FALLBACK__1__…`` refines item 1 of a list from below."""
        merged = self._own(lower)
        for index, value in upper.items():
            if 0 <= index < len(merged):
                merged[index] = self._merge(
                    (*dst, index), (*src, index), merged[index], value, layer
                )
            else:
                self._problem(
                    layer,
                    (*dst, index),
                    f"there is no item {index}; items are 0 to {len(merged) - 1}",
                )
        return merged

    def _merge_into_route(
        self, path: Path, lower: Any, upper: Mapping[Any, Any], layer: Layer
    ) -> Any:
        """Apply hop fields (``BOT_PROXY__PASSWORD``) or indexed hops (``BOT_PROXY__0__…``)."""
        indexed = _indexed(upper)
        if "url" in upper and path in layer.origins:
            # A whole hop given as one value (proxy={"url": …}) is a new route: no setting of
            # the route it replaces (a password meant for another proxy) carries over.
            self._replace_origins(path, path, layer)
            return dict(upper)
        if lower is _MISSING or lower is None:
            if indexed:
                self._problem(
                    layer, path, "settings for hop numbers need a proxy chain to apply to"
                )
                return lower
            self._replace_origins(path, path, layer)
            return dict(upper)
        in_list = isinstance(lower, list)
        hops = self._own(lower) if in_list else [lower]
        if not indexed:
            if len(hops) != 1:
                example = ""
                if layer.variable is not None:
                    parts = layer.variable.split("__")
                    parts.insert(len(path), "0")
                    example = f", e.g. {'__'.join(parts)} for the first hop"
                self._problem(
                    layer,
                    path,
                    f"the {format_path(path)} route from {self.origin_of(path)} is a "
                    f"{len(hops)}-hop chain; "
                    f"say which hop these settings are for{example}",
                )
                return lower
            dst = (*path, 0) if in_list else path
            merged = self._merge_hop(dst, path, hops[0], upper, layer)
            return [merged] if in_list else merged
        for index, settings in upper.items():
            if not 0 <= index < len(hops):
                self._problem(
                    layer, (*path, index), f"there is no hop {index}; hops are 0 to {len(hops) - 1}"
                )
                continue
            dst = (*path, index) if in_list else path
            hops[index] = self._merge_hop(dst, (*path, index), hops[index], settings, layer)
        return hops if in_list else hops[0]

    def _merge_hop(self, dst: Path, src: Path, lower: Any, upper: Any, layer: Layer) -> Any:
        if isinstance(lower, str) and isinstance(upper, Mapping):
            # A URL from below takes hop fields from above: it becomes {"url": ...}.
            url_origin = self.origins.get(dst)
            lower = self._own({"url": lower})
            if url_origin is not None:
                url_path: Path = (*dst, "url")
                self.origins[url_path] = url_origin
        if not (isinstance(lower, dict) and isinstance(upper, Mapping)):
            self._replace_origins(dst, src, layer)
            return upper
        merged = self._own(lower)
        for key, value in upper.items():
            merged[key] = self._merge(
                (*dst, key), (*src, key), lower.get(key, _MISSING), value, layer
            )
        return merged

    def _own(self, container: _Container) -> _Container:
        """``container`` (a dict or list of this stack) to change in place, copied first when
        it came from a layer: copying on every merge would make merging quadratic."""
        if id(container) in self._made:  # held there, so the id is not another object's
            return container
        copy = container.copy()
        self._made[id(copy)] = copy
        return copy

    def _replace_origins(self, dst: Path, src: Path, layer: Layer) -> None:
        self.origins.drop_below(dst)
        for supplied, origin in _origins_below(layer, src):
            self.origins[dst + supplied[len(src) :]] = origin

    def _problem(self, layer: Layer, path: Path, message: str) -> None:
        supplied = _origins_below(layer, path)
        origin = supplied[0][1] if supplied else Origin(layer.kind, layer.kind)
        self.problems.append(Problem(origin.label, format_path(path), message))


def _indexed(value: Any) -> bool:
    """A mapping whose keys are all numbers: settings for items of a list."""
    return isinstance(value, Mapping) and bool(value) and all(isinstance(k, int) for k in value)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
