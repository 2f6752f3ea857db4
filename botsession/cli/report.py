"""What ``botsession show`` reports: every setting in effect, redacted, with its source."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from ..config_schema import BotSessionConfig, LocalLookup, ProxyHop, ProxyRoute
from ..errors import ConfigError
from ..net.routing import FIRST_CHECK_AFTER, LONGEST_CHECK_INTERVAL, RouteState
from ..redaction import MASK, redact_url
from ..sources import LoadedConfig
from ..sources.provenance import DEFAULT_ORIGIN, HOP_KEYS, Origin, Path, format_path

Loaded = LoadedConfig[BotSessionConfig]


@dataclass(frozen=True)
class Row:
    """One setting: its path, its value (secrets masked) and where it came from."""

    path: str
    value: Any
    origin: Origin


def route_line(config: BotSessionConfig, route: ProxyRoute | None = None) -> str:
    """``client → socks5 10.0.0.1:1080 → … → api.telegram.org`` for ``route`` (default: proxy)."""
    target = urlsplit(config.api.base).netloc
    route = route if route is not None else config.proxy
    if route is None:
        return f"client → {target} (direct)"
    return route.describe(target)


def local_lookups(config: BotSessionConfig) -> list[tuple[str, tuple[LocalLookup, ...]]]:
    """For each route (``proxy``, ``fallback[0]``, … or ``direct``): names resolved here."""
    if config.proxy is None:
        return [("direct", config.resolved_locally(None))]
    return [
        (name, config.resolved_locally(route))
        for name, route in zip(config.route_names(), config.routes, strict=True)
    ]


def local_lookups_line(config: BotSessionConfig) -> str:
    """``resolved on this machine: proxy: relay.example (dials hop 1); fallback[0]: none``."""
    parts = []
    for name, lookups in local_lookups(config):
        found = ", ".join(map(str, lookups)) if lookups else "none"
        parts.append(found if name == "direct" else f"{name}: {found}")
    return "resolved on this machine: " + "; ".join(parts)


def rows(loaded: Loaded) -> Iterator[Row]:
    """Every route hop and every other setting in effect, in schema order."""
    config = loaded.config
    if config.proxy is None:
        yield Row("proxy", None, _origin_of_setting(loaded, ("proxy",)))
    for route_path, route in _routes(config):
        for hop_path, hop in zip(_hop_paths(loaded, route_path, route), route, strict=True):
            origin = loaded.origin_of(hop_path)
            yield Row(format_path(hop_path), _hop_value(hop), origin)
            for field, value, field_origin in _hop_fields(loaded, hop_path):
                if not _same_source(field_origin, origin):
                    yield Row(format_path((*hop_path, field)), value, field_origin)
    for path, value in _leaves(config, ()):
        yield Row(format_path(path), value, _origin_of_setting(loaded, path))


def _origin_of_setting(loaded: Loaded, path: Path) -> Origin:
    """Where a setting was written; ``default`` when no source gave it, even when a source gave
    the mapping around it (``api: {base: …}`` says nothing of ``api.is_local``)."""
    node: Any = loaded.stack.data
    for segment in path:
        if not isinstance(node, dict) or segment not in node:
            return DEFAULT_ORIGIN
        node = node[segment]
    return loaded.origin_of(path)


def as_json(loaded: Loaded) -> dict[str, Any]:
    """The same report as a JSON-ready document."""
    config = loaded.config
    routes = [
        {"route": route_line(config, route), "hops": _hops_json(loaded, route_path, route)}
        for route_path, route in _routes(config)
    ]
    return {
        "config_file": loaded.stack.config_file,
        "profile": loaded.stack.profile,
        "route": route_line(config),
        "proxy": routes[0]["hops"] if config.proxy is not None else None,
        "fallback": routes[1:],
        "resolved_locally": [
            {
                "route": name,
                "names": [
                    {"name": lookup.name, "hop": lookup.hop, "reason": lookup.reason}
                    for lookup in lookups
                ],
            }
            for name, lookups in local_lookups(config)
        ],
        "settings": {
            row.path: {"value": row.value, "source": row.origin.label, "kind": row.origin.kind}
            for row in rows(loaded)
            if not _is_route_path(row.path)
        },
        "route_states": [
            {"index": index, "name": name, "state": state}
            for index, (name, state) in enumerate(start_states(config))
        ],
    }


def problems_json(error: ConfigError) -> dict[str, Any]:
    """``show --json`` of an invalid configuration: ``{"valid": false, "problems": [...]}``,
    each problem's ``where``, ``path`` and ``message`` (already redacted)."""
    return {
        "valid": False,
        "problems": [
            {"where": problem.where, "path": problem.path, "message": problem.message}
            for problem in error.problems
        ],
    }


def _is_route_path(path: str) -> bool:
    """``proxy``, ``proxy[1].password``, ``fallback[0]``: a route's row, not a setting such as
    ``fallback_hedge_after``."""
    for name in ("proxy", "fallback"):
        if path == name or path.startswith((f"{name}[", f"{name}.")):
            return True
    return False


def start_states(config: BotSessionConfig) -> list[tuple[str, RouteState]]:
    """Each route's name and the state a session starts it in (the words of route_status)."""
    return [
        (name, "active" if index == 0 else "standby")
        for index, name in enumerate(config.route_names())
    ]


def failover_line(config: BotSessionConfig) -> str | None:
    """How a session moves between its routes, in one line; None without fallback routes.

    ``failover: hedge after 2 s; failed routes checked in the background every 6 s; at start:
    proxy active, fallback[0] standby``
    """
    if not config.fallback:
        return None
    hedge = config.fallback_hedge_after
    hedging = "no hedging" if hedge is None else f"hedge after {hedge:g} s"
    longest = config.fallback_retry_primary_after
    if longest is None:
        checks = (
            f"failed routes checked in the background from {FIRST_CHECK_AFTER:g} s, "
            f"doubling to {LONGEST_CHECK_INTERVAL:g} s; traffic stays on the route in use"
        )
    elif longest <= FIRST_CHECK_AFTER:
        checks = f"failed routes checked in the background every {longest:g} s"
    else:
        checks = (
            f"failed routes checked in the background from {FIRST_CHECK_AFTER:g} s, "
            f"doubling to {longest:g} s"
        )
    states = ", ".join(f"{name} {state}" for name, state in start_states(config))
    return f"failover: {hedging}; {checks}; at start: {states}"


def probe_states(
    config: BotSessionConfig, failures: dict[int, str]
) -> list[tuple[str, RouteState, str]]:
    """The states a session would give the routes after this probe: the first route that works
    ``active``, the others that work ``standby``, the broken ones ``failed`` with the reason.
    ``failures`` maps route numbers (from 1) to what failed."""
    states: list[tuple[str, RouteState, str]] = []
    active_taken = False
    for number, name in enumerate(config.route_names(), start=1):
        if number in failures:
            states.append((name, "failed", failures[number]))
        else:
            states.append((name, "standby" if active_taken else "active", ""))
            active_taken = True
    return states


def text(value: Any) -> str:
    """A value as ``show`` prints it."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _routes(config: BotSessionConfig) -> list[tuple[Path, ProxyRoute]]:
    if config.proxy is None:
        return []
    fallbacks: list[tuple[Path, ProxyRoute]] = [
        (("fallback", index), route) for index, route in enumerate(config.fallback)
    ]
    return [(("proxy",), config.proxy), *fallbacks]


def _raw(loaded: Loaded, path: Path) -> Any:
    node: Any = loaded.stack.data
    for segment in path:
        try:
            node = node[segment]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _hop_paths(loaded: Loaded, route_path: Path, route: ProxyRoute) -> list[Path]:
    # A route written as a list has a path per hop; a single URL or mapping is the hop itself.
    if isinstance(_raw(loaded, route_path), list):
        return [(*route_path, index) for index in range(len(route))]
    return [route_path]


def _hop_value(hop: ProxyHop) -> str:
    """A hop as ``show`` lists it: its URL, and for an https hop how TLS is checked."""
    note = hop.tls_note()
    return f"{hop.label()} ({note})" if note else hop.label()


def _hop_fields(loaded: Loaded, hop_path: Path) -> Iterator[tuple[str, Any, Origin]]:
    raw = _raw(loaded, hop_path)
    if not isinstance(raw, dict):
        return
    for field in HOP_KEYS:
        if field in raw:
            value = MASK if field == "password" else redact_url(str(raw[field]), value=True)
            yield field, value, loaded.origin_of((*hop_path, field))


def _same_source(one: Origin, other: Origin) -> bool:
    """Same file or same variable: positions inside one YAML file do not count as different."""
    if one.kind != other.kind:
        return False
    if one.kind == "yaml":
        return one.label.rsplit(":", 2)[0] == other.label.rsplit(":", 2)[0]
    return one.label == other.label


def _hops_json(loaded: Loaded, route_path: Path, route: ProxyRoute) -> list[dict[str, Any]]:
    hops = []
    for hop_path, hop in zip(_hop_paths(loaded, route_path, route), route, strict=True):
        hops.append(
            {
                "url": hop.label(),
                "scheme": hop.scheme,
                "host": hop.host,
                "port": hop.port,
                "username": hop.username,
                "password": MASK if hop.password is not None else None,
                "rdns": hop.rdns,
                "tls": (
                    {
                        "verify": hop.verify,
                        "ca_file": None if hop.ca_file is None else str(hop.ca_file),
                    }
                    if hop.tls
                    else None
                ),
                "source": loaded.origin_of(hop_path).label,
                "field_sources": {
                    field: origin.label for field, _, origin in _hop_fields(loaded, hop_path)
                },
            }
        )
    return hops


def _leaves(model: BaseModel, prefix: Path) -> Iterator[tuple[Path, Any]]:
    for name in type(model).model_fields:
        if not prefix and name in ("proxy", "fallback"):
            continue
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _leaves(value, (*prefix, name))
        else:
            yield (*prefix, name), str(value) if hasattr(value, "__fspath__") else value
