"""What the MTProto adapters (``botsession.telethon``, ``botsession.kurigram``) share.

An MTProto client keeps one long-lived stream per data center and opens it through the router;
it never reaches aiohttp. Both adapters hold one router per connection class they make, shared
by every connection of the class (the main DC and the others the client borrows), and stop its
background checks when none of those connections is connected or connecting.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, ClassVar

from .net.routing import Router

if TYPE_CHECKING:
    from .config_schema import BotSessionConfig
    from .net.routing import RouteStatus

__all__ = ["RoutedConnection", "routed_namespace"]


class RoutedConnection:
    """What the connection classes of both MTProto adapters share: the router of the class,
    the connections made of it, ``route_status()``, and stopping the router's background
    checks when none of those connections is live."""

    router: ClassVar[Router | None] = None
    """The routes of every connection of this class; None: no routes, direct connections."""
    _made: ClassVar[weakref.WeakSet[Any]]
    """The connections of this class (the clients make one per DC or session)."""

    @classmethod
    def route_status(cls) -> tuple[RouteStatus, ...]:
        """Each route's state (``active``, ``standby``, ``failed``), last error, when that
        changed and how long each hop took (see ``Router.route_status``); empty without
        routes."""
        return () if cls.router is None else cls.router.route_status()

    @property
    def live(self) -> bool:
        """Connected, or connecting."""
        raise NotImplementedError

    def _made_now(self) -> None:
        self._made.add(self)

    async def _close_router_when_idle(self) -> None:
        """Stop the router's background checks (tasks of the running event loop) when no
        connection of the class is live; the next connect resumes them. The clients reconnect
        a connection object while a disconnect of it may still run, so the test is on every
        connection's state, not on who called."""
        router = self.router
        if router is not None and not any(connection.live for connection in self._made):
            await router.close()


def routed_namespace(config: BotSessionConfig) -> dict[str, Any]:
    """The class attributes of a new connection class: its router (None when the
    configuration has no routes: the client's own direct connection is used) and the set of
    its connections."""
    router = None
    if config.routes:
        router = Router(
            config.routes,
            connect_timeout=config.connect_timeout,
            retry_primary_after=config.fallback_retry_primary_after,
            hedge_after=config.fallback_hedge_after,
            limit=config.limit,
        )
    return {"router": router, "_made": weakref.WeakSet()}
