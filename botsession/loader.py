"""``load_config``: find the sources, stack them, validate once, report every problem at once.

Precedence, highest first: keyword overrides > environment > ``.env`` > YAML file > defaults.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from .config_schema import DEFAULT_API_BASE, BotSessionConfig, HopSpec, ProxyRoute
from .environment_proxy import proxy_from_environment
from .errors import ConfigError, Problem
from .layers import ROUTE_KEYS, Layer, Origin, Path, Stack, format_path
from .profiles import apply_profile
from .redaction import collect_secrets, describe_value, scrub
from .sources import dotenv_layers, environment_layers, override_layer
from .yaml_source import read_yaml

DEFAULT_FILE = "bot.yaml"
DEFAULT_ENV_FILE = ".env"

ConfigInput = str | PathLike[str] | BotSessionConfig | None


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration plus where each of its values came from."""

    config: BotSessionConfig
    stack: Stack

    def origin_of(self, path: Path) -> Origin:
        return self.stack.origin_of(path)


def load_config(
    config: ConfigInput = None,
    *,
    env_prefix: str = "BOT_",
    env_file: str | PathLike[str] | None = None,
    profile: str | None = None,
    **overrides: Any,
) -> BotSessionConfig:
    """Load and validate the configuration; raise ``ConfigError`` listing every problem.

    ``config`` is a YAML file, an already loaded ``BotSessionConfig``, or None: then the file
    named by ``$<PREFIX>CONFIG``, else ``./bot.yaml`` if it exists, else environment and
    overrides only. ``env_file`` defaults to ``./.env`` when that exists. ``profile`` picks
    one of the file's ``profiles`` (default: ``$<PREFIX>PROFILE``, else ``default_profile``).
    """
    outcome = _load(config, _Options(env_prefix, env_file, profile), overrides)
    del config, overrides  # raw input (passwords) stays out of the traceback's locals
    if isinstance(outcome, ConfigError):
        raise outcome
    return outcome.config


def load_config_with_origins(
    config: ConfigInput = None,
    *,
    env_prefix: str = "BOT_",
    env_file: str | PathLike[str] | None = None,
    profile: str | None = None,
    **overrides: Any,
) -> LoadedConfig:
    """``load_config``, also returning the origin of every value (for ``show``)."""
    outcome = _load(config, _Options(env_prefix, env_file, profile), overrides)
    del config, overrides  # as in load_config
    if isinstance(outcome, ConfigError):
        raise outcome
    return outcome


def load_outcome(
    config: ConfigInput = None,
    *,
    env_prefix: str = "BOT_",
    env_file: str | PathLike[str] | None = None,
    profile: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> LoadedConfig | ConfigError:
    """``load_config``'s work, returning the error instead of raising it.

    The public entry points raise it themselves, after deleting their raw arguments: raised
    here, it would carry frames whose locals hold the raw configuration, passwords included,
    into tracebacks recorded with local variables (Sentry, rich, ``capture_locals``).
    """
    return _load(config, _Options(env_prefix, env_file, profile), overrides or {})


def _load(
    config: ConfigInput, options: _Options, overrides: Mapping[str, Any]
) -> LoadedConfig | ConfigError:
    environ = dict(os.environ)
    if isinstance(config, BotSessionConfig):
        stack = Stack()
        stack.push(_object_layer(config))
        if options.profile is not None:
            message = "a profile can only be chosen when reading a YAML file"
            stack.problems.append(Problem("keyword argument profile=", "", message))
    else:
        stack = _stack_sources(config, options, environ)
    stack.push(override_layer(overrides))
    _apply_trust_env(stack, environ)
    problems = list(stack.problems)
    model: BotSessionConfig | None = None
    try:
        model = BotSessionConfig.model_validate(stack.data)
    except ValidationError as error:
        problems.extend(_problem(detail, stack) for detail in error.errors(include_url=False))
    if problems or model is None:
        secrets = collect_secrets(stack.data)
        return ConfigError(
            Problem(scrub(p.where, secrets), p.path, scrub(p.message, secrets)) for p in problems
        )
    return LoadedConfig(model, stack)


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


@dataclass(frozen=True)
class _Options:
    env_prefix: str
    env_file: str | PathLike[str] | None
    profile: str | None


def _stack_sources(
    config: str | PathLike[str] | None, options: _Options, environ: dict[str, str]
) -> Stack:
    stack = Stack()
    prefix = options.env_prefix
    dotenv: list[Layer] = []
    dotenv_values: dict[str, str] = {}
    dotenv_path = FsPath(options.env_file if options.env_file is not None else DEFAULT_ENV_FILE)
    if options.env_file is not None or dotenv_path.is_file():
        dotenv, dotenv_values = dotenv_layers(dotenv_path, os.fspath(dotenv_path), prefix)
    requested = _requested_profile(options, environ, dotenv_values, os.fspath(dotenv_path))
    found = config_file(config, prefix, environ)
    if found is not None:
        path, shown_as = found
        if not _missing(path):
            # read_yaml refuses directories, FIFOs, devices and huge files by itself.
            # ${VAR} sees the environment first, then .env, as docker compose does.
            layer = read_yaml(path, shown_as, {**dotenv_values, **environ})
            layer, stack.profile, stack.profile_origin = apply_profile(
                layer, shown_as, requested, f"{prefix}PROFILE"
            )
            stack.push(layer)
            stack.config_file = shown_as
        else:
            source = "" if config is not None else f" (named by ${prefix}CONFIG)"
            message = f"the config file does not exist{source}"
            stack.problems.append(Problem(shown_as, "", message))
    elif requested is not None:
        name, origin = requested
        message = f"profile {name!r} was selected, but there is no config file"
        stack.problems.append(Problem(origin.label, "", message))
    for layer in [*dotenv, *environment_layers(environ, prefix)]:
        stack.push(layer)
    return stack


def _missing(path: FsPath) -> bool:
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False  # a name too long, a NUL in it: read_yaml says what is wrong
    return False


def _requested_profile(
    options: _Options, environ: dict[str, str], dotenv: dict[str, str], dotenv_name: str
) -> tuple[str, Origin] | None:
    if options.profile is not None:
        return options.profile, Origin("override", "keyword argument profile=")
    wanted = f"{options.env_prefix}PROFILE".upper()
    for source, kind, label in (
        (environ, "env", "environment variable {}"),
        (dotenv, "dotenv", f"{dotenv_name} ({{}})"),
    ):
        for name, value in source.items():
            if name.upper() == wanted and value:
                return value, Origin(kind, label.format(name))  # type: ignore[arg-type]
    return None


def _apply_trust_env(stack: Stack, environ: dict[str, str]) -> None:
    """With ``trust_env`` and no proxy configured anywhere, take one from HTTPS_PROXY & co."""
    try:
        trusted = TypeAdapter(bool).validate_python(stack.data.get("trust_env", False))
    except ValidationError:
        return  # reported by the validation that follows
    if not trusted or "proxy" in stack.data:
        return
    api = stack.data.get("api")
    base = api.get("base") if isinstance(api, dict) else None
    found = proxy_from_environment(environ, base if isinstance(base, str) else DEFAULT_API_BASE)
    if found is not None:
        url, variable = found
        origin = Origin("env", f"environment variable {variable} (trust_env)")
        stack.push(Layer("env", data={"proxy": url}, origins={("proxy",): origin}))


def _object_layer(config: BotSessionConfig) -> Layer:
    # Only the values that were set: defaults stay defaults, so a default that depends on
    # another setting (connect_timeout on timeout) follows an override of that setting.
    data = config.model_dump(exclude_unset=True)
    if "proxy" in data:
        data["proxy"] = config.proxy  # keep the validated route as it is
    return Layer("object", data=data, origins={(): Origin("object", "BotSessionConfig object")})


# --- turning pydantic's errors into problems -------------------------------------------------

_CUSTOM_TYPES = {"botsession", "proxy_url", "api_base", "empty_route", "long_route"}
_INPUT_SHOULD = re.compile(r"^(Input|Value|Tuple|List|String) should (be|have)\b")


def _problem(detail: ErrorDetails, stack: Stack) -> Problem:
    path = _user_path(tuple(detail["loc"]), stack.data)
    kind = detail["type"]
    if kind == "extra_forbidden":
        origin = stack.key_origin_of(path)
        return Problem(origin.label, format_path(path), _unknown_key(path))
    origin = stack.origin_of(path)
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


def _unknown_key(path: Path) -> str:
    key = str(path[-1])
    known = _known_keys(path[:-1])
    guess = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean {guess[0]!r}?" if guess else f"; known keys: {', '.join(known)}"
    return f"unknown setting {key!r}{hint}"


def _known_keys(parent: Path) -> list[str]:
    model: type[BaseModel] = BotSessionConfig
    for segment in parent:
        if isinstance(segment, int):
            continue
        if segment in ROUTE_KEYS:
            model = HopSpec
            continue
        annotation = (
            model.model_fields[segment].annotation if segment in model.model_fields else None
        )
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    if model is ProxyRoute:  # pragma: no cover - routes are entered through ROUTE_KEYS
        model = HopSpec
    return list(model.model_fields)
