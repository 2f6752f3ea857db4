"""botsession's settings sources: genuine pydantic-settings sources that also keep provenance.

``BotSessionConfig.settings_customise_sources`` orders them as pydantic-settings users expect
(keyword arguments, then ``BOT_…`` variables, then ``.env``, then ``bot.yaml``), and a user may
add a source of their own there. Each source reads its input into ``Layer``s: the values, where
each was written, and the problems found. ``merge_sources`` lays them over each other.

Why botsession merges the layers itself instead of pydantic-settings' ``deep_update``: a route
is replaced by a route from a higher source (``BOT_PROXY=socks5://…`` over a YAML chain) but
completed by hop settings (``BOT_PROXY__PASSWORD``, ``BOT_PROXY__1__PASSWORD``) — deep_update
cannot tell the two apart and does not remember where a value came from, which every error
message and ``botsession show`` need.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource
from pydantic_settings.sources import DefaultSettingsSource

from ..errors import Problem
from .dotenv import dotenv_layers
from .environment import environment_layers, override_layer
from .profiles import apply_profile
from .provenance import HOP_KEYS, Layer, Origin, Stack
from .standard_proxies import proxy_from_environment
from .yaml_file import read_yaml

DEFAULT_FILE = "bot.yaml"
DEFAULT_ENV_FILE = ".env"

_GIVEN_DATA_ONLY: ContextVar[bool] = ContextVar("botsession_given_data_only", default=False)


@contextlib.contextmanager
def validating_given_data() -> Iterator[None]:
    """While validating data that was read already: by botsession (``load_config``), or by the
    application whose own settings hold a ``BotSessionConfig`` field.

    pydantic validates a mapping as a settings class by calling the class with it (for a field
    of an enclosing model, and in ``model_validate``), and the class's ``__init__`` reads its
    sources; inside this block it takes its keyword arguments only. So an embedded config never
    reads ``BOT_…`` variables, ``.env`` or ``bot.yaml``: only ``BotSessionConfig()`` does.
    """
    token = _GIVEN_DATA_ONLY.set(True)
    try:
        yield
    finally:
        _GIVEN_DATA_ONLY.reset(token)


def sources_to_read(
    sources: tuple[PydanticBaseSettingsSource, ...],
) -> tuple[PydanticBaseSettingsSource, ...]:
    """``sources``, or only the keyword arguments when validating data given."""
    if _GIVEN_DATA_ONLY.get():
        return tuple(source for source in sources if isinstance(source, InitSettingsSource))
    return sources


@dataclass
class Reading:
    """What the sources of one load share: where to look, and the environment as it was."""

    env_prefix: str = "BOT_"
    env_file: str | PathLike[str] | None = None
    """None: ``./.env`` when it exists."""
    config: str | PathLike[str] | None = None
    """The YAML file; None: ``$<PREFIX>CONFIG``, else ``./bot.yaml`` when it exists."""
    profile: str | None = None
    """The profile asked for in Python; None: ``$<PREFIX>PROFILE``, else ``default_profile``."""
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _dotenv: tuple[list[Layer], dict[str, str]] | None = None

    @property
    def dotenv_path(self) -> FsPath:
        return FsPath(self.env_file if self.env_file is not None else DEFAULT_ENV_FILE)

    def dotenv(self, fields: Iterable[str]) -> tuple[list[Layer], dict[str, str]]:
        """The ``.env`` layers and all its values, read once for every source that needs them."""
        if self._dotenv is None:
            path = self.dotenv_path
            if self.env_file is not None or path.is_file():
                self._dotenv = dotenv_layers(path, os.fspath(path), self.env_prefix, fields)
            else:
                self._dotenv = [], {}
        return self._dotenv


class LayeredSource(PydanticBaseSettingsSource):
    """A pydantic-settings source that reads its whole input into layers with provenance."""

    def __init__(self, settings_cls: type[BaseSettings], reading: Reading | None = None) -> None:
        super().__init__(settings_cls)
        self.reading = reading if reading is not None else Reading()

    @property
    def fields(self) -> list[str]:
        return list(self.settings_cls.model_fields)

    def layers(self) -> list[Layer]:
        """What this source read, in the order its layers are laid over each other."""
        raise NotImplementedError

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Values are read per source, not per field: see layers().
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        stack = Stack()
        for layer in self.layers():
            stack.push(layer)
        return stack.data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.reading.env_prefix!r})"


class EnvironmentSource(LayeredSource):
    """``BOT_…`` environment variables (``BOT_PROXY``, ``BOT_PROXY__1__PASSWORD``, …)."""

    def layers(self) -> list[Layer]:
        return environment_layers(self.reading.environ, self.reading.env_prefix, self.fields)


class DotEnvSource(LayeredSource):
    """The same variables from a ``.env`` file."""

    def layers(self) -> list[Layer]:
        return self.reading.dotenv(self.fields)[0]


class YamlFileSource(LayeredSource):
    """``bot.yaml`` (or ``$BOT_CONFIG``) with positions, ``${VAR}`` expansion and profiles."""

    def __init__(self, settings_cls: type[BaseSettings], reading: Reading | None = None) -> None:
        super().__init__(settings_cls, reading)
        self.shown_as: str | None = None
        """The file that was read, as the user named it."""
        self.profile: str | None = None
        self.profile_origin: Origin | None = None

    def layers(self) -> list[Layer]:
        reading = self.reading
        prefix = reading.env_prefix
        dotenv_values = reading.dotenv(self.fields)[1]
        requested = _requested_profile(reading, dotenv_values)
        found = config_file(reading.config, prefix, reading.environ)
        if found is None:
            if requested is None:
                return []
            name, origin = requested
            message = f"profile {name!r} was selected, but there is no config file"
            return [Layer("yaml", problems=[Problem(origin.label, "", message)])]
        path, shown_as = found
        if _missing(path):
            source = "" if reading.config is not None else f" (named by ${prefix}CONFIG)"
            message = f"the config file does not exist{source}"
            return [Layer("yaml", problems=[Problem(shown_as, "", message)])]
        # read_yaml refuses directories, FIFOs, devices and huge files by itself.
        # ${VAR} sees the environment first, then .env, as docker compose does.
        layer = read_yaml(path, shown_as, {**dotenv_values, **reading.environ})
        layer, self.profile, self.profile_origin = apply_profile(
            layer, shown_as, requested, f"{prefix}PROFILE"
        )
        self.shown_as = shown_as
        return [layer]


class ObjectSource(LayeredSource):
    """An already validated configuration, reloaded with overrides."""

    def __init__(self, settings_cls: type[BaseSettings], config: BaseModel) -> None:
        super().__init__(settings_cls)
        self.loaded = config

    def layers(self) -> list[Layer]:
        # Only the values that were set: defaults stay defaults, so a default that depends on
        # another setting (connect_timeout on timeout) follows an override of that setting.
        data = self.loaded.model_dump(exclude_unset=True)
        if "proxy" in data:
            data["proxy"] = getattr(self.loaded, "proxy", None)  # keep the validated route
        origin = Origin("object", f"{type(self.loaded).__name__} object")
        return [Layer("object", data=data, origins={(): origin})]


def config_file(
    config: str | PathLike[str] | None, env_prefix: str, environ: Mapping[str, str]
) -> tuple[FsPath, str] | None:
    """The YAML file to read and how to show its name; None when there is none to read."""
    if config is not None:
        return FsPath(config), os.fspath(config)
    named = environ.get(f"{env_prefix}CONFIG")
    if named:
        return FsPath(named), named
    default = FsPath(DEFAULT_FILE)
    return (default, DEFAULT_FILE) if default.is_file() else None


def merge_sources(
    sources: Iterable[PydanticBaseSettingsSource], default_api_base: str
) -> tuple[Stack, Reading]:
    """Lay the sources' layers over each other, the highest priority (first) on top, and apply
    ``trust_env``; returns the stack and the reading of the environment it used."""
    stack = Stack()
    reading: Reading | None = None
    for source in reversed(tuple(sources)):
        if isinstance(source, DefaultSettingsSource):
            continue  # the schema's defaults apply at validation
        if isinstance(source, LayeredSource):
            reading = reading or source.reading
            layers = source.layers()
        elif isinstance(source, InitSettingsSource):
            layers = [override_layer(source())]
        else:  # a source of the user's own, merged like the others
            name = type(source).__name__
            data = source()
            origin = Origin("override", f"settings source {name}")
            layers = [Layer("override", data=data, origins={(key,): origin for key in data})]
        for layer in layers:
            stack.push(layer)
        if isinstance(source, YamlFileSource) and source.shown_as is not None:
            stack.config_file = source.shown_as
            stack.profile, stack.profile_origin = source.profile, source.profile_origin
    reading = reading or Reading()
    _apply_trust_env(stack, reading.environ, default_api_base)
    stack.settle()
    return stack, reading


def _missing(path: FsPath) -> bool:
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False  # a name too long, a NUL in it: read_yaml says what is wrong
    return False


def _requested_profile(reading: Reading, dotenv: Mapping[str, str]) -> tuple[str, Origin] | None:
    if reading.profile is not None:
        return reading.profile, Origin("override", "keyword argument profile=")
    wanted = f"{reading.env_prefix}PROFILE".upper()
    dotenv_name = os.fspath(reading.dotenv_path)
    for values, kind, label in (
        (reading.environ, "env", "environment variable {}"),
        (dotenv, "dotenv", f"{dotenv_name} ({{}})"),
    ):
        for name, value in values.items():
            if name.upper() == wanted and value:
                return value, Origin(kind, label.format(name))  # type: ignore[arg-type]
    return None


def _apply_trust_env(stack: Stack, environ: Mapping[str, str], default_api_base: str) -> None:
    """With ``trust_env`` and no proxy configured anywhere, take one from HTTPS_PROXY & co.

    Hop settings without a URL (``BOT_PROXY__CA_FILE`` for an ``HTTPS_PROXY=https://…`` with
    a private CA) complete the proxy taken from the variable.
    """
    try:
        trusted = TypeAdapter(bool).validate_python(stack.data.get("trust_env", False))
    except ValidationError:
        return  # reported by the validation that follows
    settings = stack.data.get("proxy")
    completes = (
        isinstance(settings, dict)
        and bool(settings)
        and "url" not in settings
        and all(key in HOP_KEYS for key in settings)
    )
    if not trusted or ("proxy" in stack.data and not completes):
        return
    api = stack.data.get("api")
    base = api.get("base") if isinstance(api, dict) else None
    found = proxy_from_environment(environ, base if isinstance(base, str) else default_api_base)
    if found is not None:
        url, variable = found
        origin = Origin("env", f"environment variable {variable} (trust_env)")
        if completes:
            layer = Layer("env", data={"proxy": {"url": url}}, origins={("proxy", "url"): origin})
            stack.push(layer)
            stack.origins[("proxy",)] = origin  # the hop is the variable's, completed
        else:
            stack.push(Layer("env", data={"proxy": url}, origins={("proxy",): origin}))
