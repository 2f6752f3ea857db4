"""The ``botsession`` command: check, show, probe and schema for a bot's proxy configuration.

Exit codes: 0 ok, 1 invalid configuration, 2 usage error, 3 probe failed. Results go to
stdout; problems, warnings (``warning: …``, even with ``--quiet``) and diagnoses to stderr.
``check``, ``show`` and ``schema`` never import aiogram or aiohttp, so they start in a
fraction of aiogram's import time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from .. import __version__
from ..config_schema import BotSessionConfig, yaml_json_schema
from ..errors import BotSessionWarning, ConfigError, route_name
from ..factory import load_config_with_origins
from ..redaction import redact_url
from ..sources import LoadedConfig
from ..sources.environment import env_prefix_problem
from . import report

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_PROBE_FAILED = 3
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE, what a shell tool killed by a closed pipe reports."""

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
    except BrokenPipeError:
        # The reader went away (`botsession show | head`): stop quietly, as a shell tool does.
        # stdout is pointed at /dev/null so that Python's flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE


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
        "--env-prefix",
        default="BOT_",
        type=_env_prefix,
        help="prefix of the environment variables, ending in _ (default BOT_)",
    )
    sources.add_argument(
        "--env-file", metavar="FILE", help="dotenv file to read (default: ./.env if present)"
    )
    sources.add_argument(
        "--profile",
        metavar="NAME",
        help="profile of the YAML file to use (default: $BOT_PROFILE, else default_profile)",
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


def _load(args: argparse.Namespace) -> LoadedConfig[BotSessionConfig]:
    """Load the configuration; its ``BotSessionWarning``s become ``warning: …`` lines on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BotSessionWarning)
        try:
            return load_config_with_origins(
                args.config,
                env_prefix=args.env_prefix,
                env_file=args.env_file,
                profile=args.profile,
            )
        finally:
            for warning in caught:
                if issubclass(warning.category, BotSessionWarning):
                    print(f"warning: {warning.message}", file=sys.stderr)
                else:  # pragma: no cover - nothing else warns while loading
                    warnings.warn_explicit(
                        warning.message, warning.category, warning.filename, warning.lineno
                    )


# --- check -------------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if not args.quiet:
        config = loaded.config
        source = loaded.stack.config_file or "environment and defaults (no config file)"
        profile = f" (profile {loaded.stack.profile})" if loaded.stack.profile else ""
        fallbacks = len(config.fallback)
        extra = f" + {fallbacks} fallback route{'s' if fallbacks > 1 else ''}" if fallbacks else ""
        print(
            f"{source}{profile}: valid; {report.route_line(config)}{extra}; "
            f"timeout {config.timeout:g} s, connect_timeout {config.connect_timeout:g} s, "
            f"limit {config.limit}"
        )
        print(report.local_lookups_line(config))
    return EXIT_OK


# --- show --------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    try:
        loaded = _load(args)
    except ConfigError as error:
        if args.json:  # a program reading stdout gets JSON either way
            print(json.dumps(report.problems_json(error), indent=2, ensure_ascii=False))
        raise
    if args.json:
        print(json.dumps(report.as_json(loaded), indent=2, ensure_ascii=False))
        return EXIT_OK
    config = loaded.config
    print(f"config file: {loaded.stack.config_file or '(none: environment and defaults only)'}")
    if loaded.stack.profile is not None:
        print(f"profile: {loaded.stack.profile} ({loaded.stack.profile_origin})")
    # Each route under its name in the configuration (proxy, fallback[0], …), as everywhere.
    if config.proxy is None:
        print(f"route: {report.route_line(config)}")
    for name, route in zip(config.route_names(), config.routes, strict=True):
        print(f"{name}: {report.route_line(config, route)}")
    print(report.local_lookups_line(config))
    rows = list(report.rows(loaded))
    width = max(len(row.path) for row in rows)
    value_width = max(len(report.text(row.value)) for row in rows)
    for row in rows:
        print(
            f"  {row.path.ljust(width)}  {report.text(row.value).ljust(value_width)}  {row.origin}"
        )
    failover = report.failover_line(config)
    if failover is not None:
        print(failover)
    return EXIT_OK


# --- probe -------------------------------------------------------------------------------


def _probe(args: argparse.Namespace) -> int:
    config = _load(args).config
    url = args.url or config.api.base
    timeout = args.timeout or config.connect_timeout
    from .probe import probe  # aiohttp: only this command needs it

    probed = asyncio.run(probe(config, url, timeout, sys.stdout, api_base=args.url is None))
    failures = probed.failures
    routes = len(config.routes)
    if routes > 1:
        # The words of route_status(): what a session would make of what the probe found.
        print("route states (as a session would start now):")
        found = {number: diagnosis.message for number, diagnosis in failures}
        states = report.probe_states(config, found)
        width = max(len(name) for name, _, _ in states)
        for name, state, why in states:
            print(f"  {name.ljust(width)}  {state.ljust(7)}  {why}".rstrip())
    for number, diagnosis in failures:
        which = f"route {route_name(number - 1)}: " if routes > 1 else ""
        print(f"probe failed: {which}{diagnosis.message}", file=sys.stderr)
    if failures:
        return EXIT_PROBE_FAILED
    verdict = "route ok" if routes <= 1 else f"all {routes} routes ok"
    if probed.api_base_not_found:
        verdict += ", but the API base answered 404: is api.base right?"
    print(verdict)
    return EXIT_OK


def _http_url(text: str) -> str:
    try:
        parts = urlsplit(text)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a bad port or IPv6 address; argparse would print the text as it is
        valid = False
    if not valid:
        shown = redact_url(text, value=True)  # it may hold a token or a password
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {shown!r}")
    return text


def _env_prefix(text: str) -> str:
    refused = env_prefix_problem(text)  # the same rule as load_config(env_prefix=…)
    if refused is not None:
        raise argparse.ArgumentTypeError(refused)
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


def _schema(_args: argparse.Namespace) -> int:
    print(json.dumps(yaml_json_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK
