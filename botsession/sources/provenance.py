"""Configuration layers and how they stack.

Each source (YAML file, ``.env``, environment, keyword overrides) yields a ``Layer``: raw data
plus the ``Origin`` of every value it supplied. ``stack`` merges them, lowest precedence first,
keeping for every value the origin that won — that is what error messages and ``show`` report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import Problem

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


@dataclass
class Layer:
    """The raw values one source supplied, with their origins and any reading problems."""

    kind: OriginKind
    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[Path, Origin] = field(default_factory=dict)
    key_origins: dict[Path, Origin] = field(default_factory=dict)
    """Where keys were written (YAML only); an unknown key is reported at its key."""
    problems: list[Problem] = field(default_factory=list)
    variable: str | None = None
    """The variable name, for a layer made from one environment variable."""


def format_path(path: Path) -> str:
    """``("proxy", 1, "url")`` → ``proxy[1].url``."""
    text = ""
    for segment in path:
        if isinstance(segment, int):
            text += f"[{segment}]"
        else:
            text += f".{segment}" if text else segment
    return text


@dataclass
class Stack:
    """The merged result of all layers so far."""

    config_file: str | None = None
    """The YAML file that was read, as the user named it."""
    profile: str | None = None
    """The profile of that file in use, and who chose it."""
    profile_origin: Origin | None = None
    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[Path, Origin] = field(default_factory=dict)
    key_origins: dict[Path, Origin] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def push(self, layer: Layer) -> None:
        """Lay ``layer`` over what is there: its values win, mappings merge key by key."""
        self.problems.extend(layer.problems)
        self.key_origins.update(layer.key_origins)
        for key, value in layer.data.items():
            path: Path = (key,)
            self.data[key] = self._merge(path, path, self.data.get(key, _MISSING), value, layer)

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
            merged = dict(lower)
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
        merged = list(lower)
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
        if lower is _MISSING or lower is None:
            if indexed:
                self._problem(
                    layer, path, "settings for hop numbers need a proxy chain to apply to"
                )
                return lower
            self._replace_origins(path, path, layer)
            return dict(upper)
        in_list = isinstance(lower, list)
        hops = list(lower) if in_list else [lower]
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
            lower = {"url": lower}
            if url_origin is not None:
                url_path: Path = (*dst, "url")
                self.origins[url_path] = url_origin
        if not (isinstance(lower, dict) and isinstance(upper, Mapping)):
            self._replace_origins(dst, src, layer)
            return upper
        merged = dict(lower)
        for key, value in upper.items():
            merged[key] = self._merge(
                (*dst, key), (*src, key), lower.get(key, _MISSING), value, layer
            )
        return merged

    def _replace_origins(self, dst: Path, src: Path, layer: Layer) -> None:
        for known in [p for p in self.origins if p[: len(dst)] == dst]:
            del self.origins[known]
        for supplied, origin in layer.origins.items():
            if supplied[: len(src)] == src:
                self.origins[dst + supplied[len(src) :]] = origin

    def _problem(self, layer: Layer, path: Path, message: str) -> None:
        origin = next(
            (o for p, o in layer.origins.items() if p[: len(path)] == path),
            Origin(layer.kind, layer.kind),
        )
        self.problems.append(Problem(origin.label, format_path(path), message))


def _indexed(value: Any) -> bool:
    """A mapping whose keys are all numbers: settings for items of a list."""
    return isinstance(value, Mapping) and bool(value) and all(isinstance(k, int) for k in value)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
