"""The ``botsession`` command: check, show, probe and schema for a bot's proxy configuration.

Exit codes: 0 ok, 1 invalid configuration, 2 usage error, 3 probe failed. Results go to
stdout, problems and diagnoses to stderr. ``check``, ``show`` and ``schema`` never import
aiogram or aiohttp, so they start in a fraction of aiogram's import time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from . import __version__
from .config_schema import BotSessionConfig, ProxyRoute
from .errors import ConfigError
from .layers import Origin, Path
from .loader import LoadedConfig, load_config_with_origins
from .redaction import MASK, redact_url

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_PROBE_FAILED = 3

_EXAMPLES = """\
examples:
  botsession check                      validate ./bot.yaml (or $BOT_CONFIG) plus BOT_* variables
  botsession check --quiet bot.yaml     for CI: silent when valid, problems and exit 1 when not
  botsession show                       effective settings, redacted, with where each came from
  botsession show --json prod.yaml      the same for machines
  botsession probe                      connect hop by hop and name the hop that is broken
  botsession probe --url https://api.telegram.org --timeout 5
  botsession schema > bot.schema.json   JSON Schema of bot.yaml for editors

exit codes: 0 ok, 1 invalid configuration, 2 usage error, 3 probe failed
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return run(args)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="botsession",
        description="Validate, explain and diagnose a Telegram bot's proxy route.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"botsession {__version__}")
    sources = argparse.ArgumentParser(add_help=False)
    sources.add_argument(
        "config",
        nargs="?",
        metavar="PATH",
        help="YAML config file (default: $BOT_CONFIG, else ./bot.yaml if present)",
    )
    sources.add_argument(
        "--env-prefix", default="BOT_", help="prefix of the environment variables (default BOT_)"
    )
    sources.add_argument(
        "--env-file", metavar="FILE", help="dotenv file to read (default: ./.env if present)"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(
        name: str, summary: str, run: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            parents=[sources],
            help=summary,
            description=summary,
            epilog=_EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=run)
        return sub

    check = command("check", "validate the configuration", _check)
    check.add_argument("-q", "--quiet", action="store_true", help="print nothing when valid")
    show = command("show", "show the effective settings and their sources", _show)
    show.add_argument("--json", action="store_true", help="print JSON")
    probe = command("probe", "connect through the route hop by hop", _probe)
    probe.add_argument(
        "--url", type=_http_url, help="target (default: the configured Bot API server)"
    )
    probe.add_argument(
        "--timeout",
        type=_positive_seconds,
        metavar="S",
        help="seconds allowed per step (default: connect_timeout)",
    )

    schema = commands.add_parser("schema", help="print the JSON Schema of bot.yaml")
    schema.set_defaults(run=_schema)
    return parser


def _load(args: argparse.Namespace) -> LoadedConfig:
    return load_config_with_origins(args.config, env_prefix=args.env_prefix, env_file=args.env_file)


# --- check -------------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if not args.quiet:
        config = loaded.config
        source = loaded.stack.config_file or "environment and defaults (no config file)"
        print(
            f"{source}: valid; {_route_line(config)}; timeout {config.timeout:g} s, "
            f"connect_timeout {config.connect_timeout:g} s, limit {config.limit}"
        )
    return EXIT_OK


def _route_line(config: BotSessionConfig) -> str:
    target = urlsplit(config.api.base).netloc
    if config.proxy is None:
        return f"client → {target} (direct)"
    return config.proxy.describe(target)


# --- show --------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    loaded = _load(args)
    rows = list(_rows(loaded))
    if args.json:
        document = {
            "config_file": loaded.stack.config_file,
            "route": _route_line(loaded.config),
            "proxy": _hops_json(loaded),
            "settings": {
                path: {"value": value, "source": origin, "kind": kind}
                for path, value, origin, kind in rows
                if not path.startswith("proxy")
            },
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"config file: {loaded.stack.config_file or '(none: environment and defaults only)'}")
    print(f"route: {_route_line(loaded.config)}")
    width = max(len(path) for path, *_ in rows)
    value_width = max(len(_text(value)) for _, value, *_ in rows)
    for path, value, origin, _kind in rows:
        print(f"  {path.ljust(width)}  {_text(value).ljust(value_width)}  {origin}")
    return EXIT_OK


def _rows(loaded: LoadedConfig) -> Iterator[tuple[str, Any, str, str]]:
    """``(setting, redacted value, source, source kind)`` for everything in effect."""
    yield from _hop_rows(loaded)
    for path, value in _leaves(loaded.config, ()):
        origin = loaded.origin_of(path)
        yield _dotted(path), value, origin.label, origin.kind


def _leaves(model: BaseModel, prefix: Path) -> Iterator[tuple[Path, Any]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, ProxyRoute) or (name == "proxy" and value is None):
            continue
        if isinstance(value, BaseModel):
            yield from _leaves(value, (*prefix, name))
        else:
            yield (*prefix, name), value if not hasattr(value, "__fspath__") else str(value)


def _hop_paths(loaded: LoadedConfig) -> list[Path]:
    route = loaded.config.proxy
    if route is None:
        return []
    raw = loaded.stack.data.get("proxy")
    return (
        [("proxy", index) for index in range(len(route))] if isinstance(raw, list) else [("proxy",)]
    )


def _hop_rows(loaded: LoadedConfig) -> Iterator[tuple[str, Any, str, str]]:
    route = loaded.config.proxy
    if route is None:
        origin = loaded.origin_of(("proxy",))
        yield "proxy", None, origin.label, origin.kind
        return
    for hop, path in zip(route, _hop_paths(loaded), strict=True):
        origin = loaded.origin_of(path)
        yield _dotted(path), hop.label(), origin.label, origin.kind
        for field, value in _hop_field_origins(loaded, path):
            field_origin = loaded.origin_of((*path, field))
            if not _same_source(field_origin, origin):
                yield _dotted((*path, field)), value, field_origin.label, field_origin.kind


def _hop_field_origins(loaded: LoadedConfig, path: Path) -> Iterator[tuple[str, Any]]:
    raw: Any = loaded.stack.data
    for segment in path:
        raw = raw[segment]
    if not isinstance(raw, dict):
        return
    for field in ("url", "username", "password", "password_file", "rdns"):
        if field in raw:
            value = raw[field]
            yield field, MASK if field == "password" else redact_url(str(value))


def _same_source(one: Origin, other: Origin) -> bool:
    """Same file or same variable: positions inside one YAML file do not count as different."""
    if one.kind != other.kind:
        return False
    if one.kind == "yaml":
        return one.label.rsplit(":", 2)[0] == other.label.rsplit(":", 2)[0]
    return one.label == other.label


def _hops_json(loaded: LoadedConfig) -> list[dict[str, Any]] | None:
    route = loaded.config.proxy
    if route is None:
        return None
    hops = []
    for hop, path in zip(route, _hop_paths(loaded), strict=True):
        sources = {
            field: loaded.origin_of((*path, field)).label
            for field, _ in _hop_field_origins(loaded, path)
        }
        hops.append(
            {
                "url": hop.label(),
                "scheme": hop.scheme,
                "host": hop.host,
                "port": hop.port,
                "username": hop.username,
                "password": MASK if hop.password is not None else None,
                "rdns": hop.rdns,
                "source": loaded.origin_of(path).label,
                "field_sources": sources,
            }
        )
    return hops


def _dotted(path: Path) -> str:
    text = ""
    for segment in path:
        text += f"[{segment}]" if isinstance(segment, int) else (f".{segment}" if text else segment)
    return text


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# --- probe -------------------------------------------------------------------------------


def _probe(args: argparse.Namespace) -> int:
    config = _load(args).config
    url = args.url or config.api.base
    timeout = args.timeout or config.connect_timeout
    from .probe import probe  # aiohttp: only this command needs it

    diagnosis = asyncio.run(probe(config, url, timeout, sys.stdout))
    if diagnosis is not None:
        print(f"probe failed: {diagnosis.message}", file=sys.stderr)
        return EXIT_PROBE_FAILED
    print("route ok")
    return EXIT_OK


def _http_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {text!r}")
    return text


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


# --- schema ------------------------------------------------------------------------------


def json_schema() -> dict[str, Any]:
    """The JSON Schema of ``bot.yaml``."""
    schema = BotSessionConfig.model_json_schema()
    schema.update(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "botsession configuration (bot.yaml)",
            "description": "Proxy route and connection settings of a Telegram bot session.",
        }
    )
    return schema


def _schema(_args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK
