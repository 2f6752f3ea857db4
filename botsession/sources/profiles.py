"""Several named configurations in one YAML file.

```yaml
default_profile: main
timeout: 30                     # shared by every profile unless a profile sets it
profiles:
  main:   {proxy: socks5://10.0.0.1:1080}
  backup: {proxy: http://backup.example:3128}
```

The selected profile (``profile=`` > ``$BOT_PROFILE`` > ``default_profile``) is laid over the
shared top-level keys; the result is one ordinary YAML layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import Problem
from .provenance import Layer, Origin, Path, Stack, format_path, shown_key

PROFILE_KEYS = ("profiles", "default_profile")
_MAX_LISTED = 10
"""Profiles named in a message; a file with thousands lists the first ones and a count."""


def apply_profile(
    layer: Layer, shown_as: str, requested: tuple[str, Origin] | None, variable: str
) -> tuple[Layer, str | None, Origin | None]:
    """The selected profile laid over the shared keys, the profile's name and who chose it."""
    profiles = layer.data.get("profiles")
    default = layer.data.get("default_profile")
    if profiles is None and default is None:
        if requested is not None:
            name, origin = requested
            message = f"profile {name!r} was selected, but {shown_as} defines no profiles"
            layer.problems.append(Problem(origin.label, "", message))
        return layer, None, None
    problems = _shape_problems(layer, profiles, default)
    if problems:
        layer.problems.extend(problems)
        return _without_profiles(layer), None, None
    names = sorted(profiles or {})
    if requested is None and default is not None:
        requested = default, layer.origins[("default_profile",)]
    if requested is None:
        message = (
            f"choose one of the profiles {_listed(names)}: set default_profile, "
            f"${variable} or profile="
        )
        layer.problems.append(Problem(layer.key_origins[("profiles",)].label, "profiles", message))
        return _without_profiles(layer), None, None
    name, chosen_by = requested
    if name not in names:
        message = (
            f"unknown profile {shown_key(name)!r}; the profiles in {shown_as} are {_listed(names)}"
        )
        layer.problems.append(Problem(chosen_by.label, "profile", message))
        return _without_profiles(layer), None, None
    stack = Stack()
    stack.push(_without_profiles(layer))
    stack.push(_rebased(layer, ("profiles", name)))
    merged = Layer(
        "yaml",
        data=stack.data,
        origins=stack.origins,
        key_origins=stack.key_origins,
        problems=stack.problems,
        value_problems=stack.value_problems,
    )
    return merged, name, chosen_by


def _shape_problems(layer: Layer, profiles: Any, default: Any) -> list[Problem]:
    problems = []
    if default is not None and not isinstance(default, str):
        where = layer.origins[("default_profile",)].label
        problems.append(Problem(where, "default_profile", "expected the name of a profile"))
    if profiles is None:
        where = layer.key_origins[("default_profile",)].label
        problems.append(Problem(where, "default_profile", "there are no profiles to choose from"))
    elif not isinstance(profiles, dict) or not profiles:
        where = layer.origins[("profiles",)].label
        problems.append(Problem(where, "profiles", "expected a mapping of names to settings"))
    else:
        for name, settings in profiles.items():
            if not isinstance(settings, dict):
                where = layer.origins[("profiles", name)].label
                message = "expected a mapping of settings"
                problems.append(Problem(where, format_path(("profiles", name)), message))
    return problems


def _listed(names: list[str]) -> str:
    shown = ", ".join(shown_key(name) for name in names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def _without_profiles(layer: Layer) -> Layer:
    def keep(path: Path) -> bool:
        return not path or path[0] not in PROFILE_KEYS

    return Layer(
        "yaml",
        data={key: value for key, value in layer.data.items() if key not in PROFILE_KEYS},
        origins={path: origin for path, origin in layer.origins.items() if keep(path)},
        key_origins={path: origin for path, origin in layer.key_origins.items() if keep(path)},
        problems=list(layer.problems),
        value_problems=list(layer.value_problems),
    )


def _rebased(layer: Layer, prefix: Path) -> Layer:
    def moved(table: Mapping[Path, Origin]) -> dict[Path, Origin]:
        size = len(prefix)
        return {
            path[size:]: o for path, o in table.items() if path[:size] == prefix and path[size:]
        }

    node: Any = layer.data
    for segment in prefix:
        node = node[segment]
    return Layer(
        "yaml", data=dict(node), origins=moved(layer.origins), key_origins=moved(layer.key_origins)
    )
