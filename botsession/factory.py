"""From configuration to a ready session: the public builders.

Each builder takes the arguments of ``load_config``, validates once, and hands the result to
the adapter it builds (imported only when called, so that ``import botsession`` stays fast).
"""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .loader import ConfigInput, load_outcome

if TYPE_CHECKING:
    import aiohttp

    from .session import AiohttpSession


def build_session_from_config(
    config: ConfigInput = None,
    *,
    env_prefix: str = "BOT_",
    env_file: str | PathLike[str] | None = None,
    profile: str | None = None,
    **overrides: Any,
) -> AiohttpSession:
    """An aiogram session that sends every request through the configured route.

    Arguments are those of ``load_config``; bad configuration raises ``ConfigError``.
    """
    loaded = load_outcome(
        config, env_prefix=env_prefix, env_file=env_file, profile=profile, overrides=overrides
    )
    del config, overrides  # raw input (passwords) stays out of the traceback's locals
    if isinstance(loaded, ConfigError):
        raise loaded
    from .session import AiohttpSession

    return AiohttpSession.from_config(loaded.config)


def build_client_session(
    config: ConfigInput = None,
    *,
    env_prefix: str = "BOT_",
    env_file: str | PathLike[str] | None = None,
    profile: str | None = None,
    **overrides: Any,
) -> aiohttp.ClientSession:
    """A plain ``aiohttp.ClientSession`` over the same route (aiogram is not imported).

    Call it inside a running event loop, as aiohttp requires, and close the session when done.
    """
    loaded = load_outcome(
        config, env_prefix=env_prefix, env_file=env_file, profile=profile, overrides=overrides
    )
    del config, overrides  # as above
    if isinstance(loaded, ConfigError):
        raise loaded
    from .net.connector import client_session
    from .net.routing import ConnectorSpec

    return client_session(ConnectorSpec.from_config(loaded.config), timeout=loaded.config.timeout)
