"""From a validated configuration to a ready session.

``connector_spec`` is pure: it maps the model to what a connector needs. The builders load the
configuration and hand the spec to ``botsession.connector`` (aiohttp) or ``botsession.session``
(aiogram), both imported only when called so that ``import botsession`` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

from .config_schema import BotSessionConfig, ProxyRoute, TlsSettings
from .loader import ConfigInput, load_config

if TYPE_CHECKING:
    import aiohttp

    from .session import AiohttpSession

DNS_CACHE_SECONDS = 3600
"""aiogram's DNS cache lifetime (its workaround for aiogram#1500), kept on proxy connectors too."""


@dataclass(frozen=True)
class ConnectorSpec:
    """Everything a connector is built from, computed without any I/O."""

    routes: tuple[ProxyRoute, ...]
    """The primary route, then the fallbacks; empty for direct connections."""
    limit: int
    connect_timeout: float
    tls: TlsSettings
    retry_primary_after: float | None = None
    ttl_dns_cache: int = DNS_CACHE_SECONDS


def connector_spec(config: BotSessionConfig) -> ConnectorSpec:
    """The connector settings of a configuration."""
    return ConnectorSpec(
        routes=config.routes,
        limit=config.limit,
        connect_timeout=config.connect_timeout,
        tls=config.ssl,
        retry_primary_after=config.fallback_retry_primary_after,
    )


def build_session_from_config(
    config: ConfigInput = None,
    *,
    env_prefix: str = "BOT_",
    env_file: str | PathLike[str] | None = None,
    **overrides: Any,
) -> AiohttpSession:
    """An aiogram session that sends every request through the configured route.

    Arguments are those of ``load_config``; bad configuration raises ``ConfigError``.
    """
    loaded = load_config(config, env_prefix=env_prefix, env_file=env_file, **overrides)
    from .session import AiohttpSession

    return AiohttpSession.from_config(loaded)


def build_client_session(
    config: ConfigInput = None,
    *,
    env_prefix: str = "BOT_",
    env_file: str | PathLike[str] | None = None,
    **overrides: Any,
) -> aiohttp.ClientSession:
    """A plain ``aiohttp.ClientSession`` over the same route (aiogram is not imported).

    Call it inside a running event loop, as aiohttp requires, and close the session when done.
    """
    loaded = load_config(config, env_prefix=env_prefix, env_file=env_file, **overrides)
    from .connector import client_session

    return client_session(connector_spec(loaded), timeout=loaded.timeout)
