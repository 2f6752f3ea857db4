"""What the MTProto adapters (``botsession.telethon``, ``botsession.kurigram``) share.

An MTProto client keeps one long-lived stream per data center and opens it through the router;
it never reaches aiohttp. Both adapters hold one router per connection class they make, shared
by every connection of the class (the main DC and the others the client borrows), and stop its
background checks when none of those connections is connected or connecting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .net.routing import Router

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .config_schema import BotSessionConfig

__all__ = ["close_when_idle", "router_for"]


def router_for(config: BotSessionConfig) -> Router | None:
    """The router of a connection class: None when the configuration has no routes (the
    client's own direct connection is used)."""
    if not config.routes:
        return None
    return Router(
        config.routes,
        connect_timeout=config.connect_timeout,
        retry_primary_after=config.fallback_retry_primary_after,
        hedge_after=config.fallback_hedge_after,
        limit=config.limit,
    )


class Live(Protocol):
    """A connection that tells whether it holds a stream or is opening one."""

    @property
    def live(self) -> bool: ...


async def close_when_idle(router: Router | None, connections: Iterable[Live]) -> None:
    """Stop the router's background checks (tasks of the running event loop) when none of
    ``connections`` is live; the next connect resumes them. The clients reconnect a connection
    object while a disconnect of it may still run, so the test is on every connection's state,
    not on who called."""
    if router is not None and not any(connection.live for connection in connections):
        await router.close()
