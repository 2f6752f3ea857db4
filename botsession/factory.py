"""The public builders: from ``bot.yaml`` / ``BOT_…`` variables / keyword arguments to a
validated configuration, and from that to a ready session.

Every builder takes the same arguments, those of ``load_outcome`` (written once, below, and
given to each builder by ``taking_arguments_of``):
``config`` (a YAML file, or an already loaded ``BotSessionConfig``), ``env_prefix``,
``env_file``, ``profile`` and keyword overrides of any setting. Each validates once and hands
the result to the adapter it builds, imported only when called so that ``import botsession``
stays fast (aiogram alone takes seconds to import).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from os import PathLike
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .config_schema import BotSessionConfig
from .errors import ConfigError, MissingExtraError, Problem
from .sources import LoadedConfig, Reading, collect
from .sources.environment import env_prefix_problem

if TYPE_CHECKING:
    import aiohttp

    from .session import AiohttpSession

ConfigInput = str | PathLike[str] | BotSessionConfig | None

SHARED_ARGUMENTS = """
Args:
    config: Where the settings are. A path to a YAML file (``str`` or ``PathLike``); an
        already loaded ``BotSessionConfig`` (then only ``overrides`` apply); or None: the file
        named by ``$BOT_CONFIG``, else ``./bot.yaml`` if it exists, else the environment and
        ``overrides`` only.
    env_prefix: The prefix of the environment variables read: ``BOT_`` reads ``BOT_PROXY``,
        ``BOT_FALLBACK``, ``BOT_PROXY__PASSWORD``, …
    env_file: A ``.env`` file read under the environment (default: ``./.env`` when it exists).
    profile: One of the file's ``profiles`` (default: ``$BOT_PROFILE``, else the file's
        ``default_profile``).
    **overrides: Any setting by keyword (``proxy="socks5://…"``, ``fallback=[…]``,
        ``connect_timeout=5``), over every other source. Precedence, highest first: overrides,
        environment, ``.env``, YAML file, defaults.

Raises:
    ConfigError: The configuration is invalid: ``problems`` lists every problem, each with
        where it was written (file and line, variable, keyword). No message shows a password,
        a link secret or a bot token.
"""
"""The arguments every builder takes (those of ``load_outcome``), appended to each builder's
docstring by ``taking_arguments_of`` (and by the docs' griffe extension, for the reference)."""
P = ParamSpec("P")
T = TypeVar("T")


def load_outcome(
    config: ConfigInput = None,
    *,
    env_prefix: str = "BOT_",
    env_file: str | PathLike[str] | None = None,
    profile: str | None = None,
    **overrides: Any,
) -> LoadedConfig[BotSessionConfig] | ConfigError:
    """Read and validate the configuration; the error is returned, not raised.

    ``config`` is a YAML file, an already loaded ``BotSessionConfig`` (then only ``overrides``
    apply), or None: the file named by ``$<PREFIX>CONFIG``, else ``./bot.yaml`` if it exists,
    else the environment and overrides only. ``env_file`` defaults to ``./.env`` when that
    exists. ``profile`` picks one of the file's ``profiles`` (default: ``$<PREFIX>PROFILE``,
    else ``default_profile``). Precedence, highest first: overrides, environment, ``.env``,
    YAML file, defaults.

    The public entry points raise the error themselves, after dropping their raw arguments:
    raised here, it would carry frames whose locals hold the raw configuration, passwords
    included, into tracebacks recorded with local variables (Sentry, rich, ``capture_locals``).
    """
    refused = env_prefix_problem(env_prefix)
    if refused is not None:
        return ConfigError([Problem("keyword argument env_prefix=", "", refused)])
    reading = Reading(env_prefix=env_prefix, env_file=env_file, profile=profile)
    return collect(BotSessionConfig, config, reading, overrides)


Loaded = LoadedConfig[BotSessionConfig]


def taking_arguments_of(
    template: Callable[P, Loaded | ConfigError],
) -> Callable[[Callable[[Loaded], T]], Callable[P, T]]:
    """Give a builder (a function of a validated configuration) the arguments of
    ``template`` (``load_outcome``): the one signature every public builder shares."""

    def decorate(build: Callable[[Loaded], T]) -> Callable[P, T]:
        @functools.wraps(build)
        def build_from_arguments(*args: P.args, **kwargs: P.kwargs) -> T:
            loaded = template(*args, **kwargs)
            del args, kwargs  # raw input (passwords) stays out of the traceback's locals
            if isinstance(loaded, ConfigError):
                raise loaded
            return build(loaded)

        # help() and IDEs show the shared arguments, with the builder's own return type.
        returns = inspect.signature(build).return_annotation
        signature = inspect.signature(template).replace(return_annotation=returns)
        build_from_arguments.__signature__ = signature  # type: ignore[attr-defined]
        build_from_arguments.__doc__ = (
            inspect.cleandoc(build.__doc__ or "") + "\n" + SHARED_ARGUMENTS
        )
        del build_from_arguments.__wrapped__
        return build_from_arguments

    return decorate


@taking_arguments_of(load_outcome)
def load_config(loaded: Loaded) -> BotSessionConfig:
    """Read and validate the configuration, from a YAML file, ``BOT_…`` environment variables,
    a ``.env`` file and keyword arguments.

    Returns:
        The validated, immutable ``BotSessionConfig``: its ``routes`` (the primary, then the
        fallbacks), timeouts, TLS and API settings, in one canonical form. Every builder takes
        it as ``config``.
    """
    return loaded.config


@taking_arguments_of(load_outcome)
def load_config_with_origins(loaded: Loaded) -> Loaded:
    """``load_config``, also telling where each value came from (for ``botsession show``)."""
    return loaded


@taking_arguments_of(load_outcome)
def build_session_from_config(loaded: Loaded) -> AiohttpSession:
    """Build an aiogram session that sends every request through the configured route, with
    its fallbacks: ``Bot(token, session=build_session_from_config("bot.yaml"))``.

    Returns:
        A ``botsession.AiohttpSession`` (a subclass of aiogram's ``AiohttpSession``); close it
        with ``await bot.session.close()`` (or ``async with Bot(...)``).

    Needs aiogram (``pip install 'botsession[aiogram]'``); without it, ``MissingExtraError``.
    """
    try:
        from .session import AiohttpSession
    except MissingExtraError as missing:
        raise missing.naming("build_session_from_config") from missing.__cause__

    return AiohttpSession.from_config(loaded.config)


@taking_arguments_of(load_outcome)
def build_client_session(loaded: Loaded) -> aiohttp.ClientSession:
    """Build a plain ``aiohttp.ClientSession`` whose every connection goes through the
    configured route, with its fallbacks (aiogram is not imported).

    Call it inside a running event loop, as aiohttp requires, and close the session when done.

    Returns:
        An ``aiohttp.ClientSession`` with botsession's connector and the configured timeout;
        ``botsession.route_status(session)`` tells its routes' state.
    """
    from .net.connector import client_session
    from .net.routing import ConnectorSpec

    config = loaded.config
    return client_session(ConnectorSpec.from_config(config), timeout=config.timeout)
