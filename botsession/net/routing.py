"""Which route a connection goes through, and moving on to the next one when it fails.

Fallback happens only in the connect phase, before a request can have been sent, so switching
routes never sends a Bot API request twice. The active route sticks; with
``retry_primary_after`` the primary is tried first again once that long has passed since it
last failed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import AllRoutesFailedError, ProxyHopError
from .tunnel import Tunnel, open_tunnel

if TYPE_CHECKING:
    import ssl

    from ..config_schema import BotSessionConfig, ProxyRoute, TlsSettings

logger = logging.getLogger("botsession")

DNS_CACHE_SECONDS = 3600
"""aiogram's DNS cache lifetime (its workaround for aiogram#1500), kept on proxy connectors too."""


@dataclass(frozen=True)
class ConnectorSpec:
    """Everything a connector is built from, computed from the configuration without I/O."""

    routes: tuple[ProxyRoute, ...]
    """The primary route, then the fallbacks; empty for direct connections."""
    limit: int
    connect_timeout: float
    tls: TlsSettings
    retry_primary_after: float | None = None
    ttl_dns_cache: int = DNS_CACHE_SECONDS

    @classmethod
    def from_config(cls, config: BotSessionConfig) -> ConnectorSpec:
        return cls(
            routes=config.routes,
            limit=config.limit,
            connect_timeout=config.connect_timeout,
            tls=config.ssl,
            retry_primary_after=config.fallback_retry_primary_after,
        )


class Router:
    """The routes of a session (primary first), which one is active, and connecting through
    them; shared by all of a session's connections."""

    def __init__(
        self,
        routes: tuple[ProxyRoute, ...],
        *,
        connect_timeout: float,
        retry_primary_after: float | None = None,
    ) -> None:
        if not routes:
            raise ValueError("a router needs at least one route")
        self.routes = routes
        self.connect_timeout = connect_timeout
        self.retry_primary_after = retry_primary_after
        self.active = 0
        self._primary_failed_at: float | None = None

    @property
    def route(self) -> ProxyRoute:
        """The route new connections go through first."""
        return self.routes[self.active]

    def __repr__(self) -> str:
        return f"Router({self.route!r}, {len(self.routes)} routes)"

    async def connect(
        self,
        host: str,
        port: int,
        *,
        ssl: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> Tunnel:
        """A tunnel to ``host:port`` through the first route that works, in ``order``."""
        loop = asyncio.get_running_loop()
        failures: list[tuple[int, ProxyHopError]] = []
        for index in self.order(loop.time()):
            try:
                tunnel = await open_tunnel(
                    self.routes[index],
                    host,
                    port,
                    timeout=self.connect_timeout,
                    ssl=ssl,
                    server_hostname=server_hostname,
                )
            except ProxyHopError as error:
                # Nothing was sent yet: trying the next route cannot repeat a request.
                failures.append((index, error))
                self._failed(index, loop.time())
                continue
            self._succeeded(index, failures)
            return tunnel
        if len(self.routes) == 1:
            raise failures[0][1]
        numbered = [(index + 1, error) for index, error in failures]
        raise AllRoutesFailedError(self.routes, numbered) from failures[-1][1]

    def order(self, now: float) -> list[int]:
        """Route indexes to try, in order: the active one and those after it, wrapping round."""
        count = len(self.routes)
        order = [(self.active + step) % count for step in range(count)]
        if self.active != 0 and self._primary_due(now):
            order.remove(0)
            order.insert(0, 0)
        return order

    def _failed(self, index: int, now: float) -> None:
        if index == 0:
            self._primary_failed_at = now

    def _succeeded(self, index: int, failures: list[tuple[int, ProxyHopError]]) -> None:
        if index == self.active:
            return
        left = self.active
        self.active = index
        if index == 0:
            logger.warning("proxy route 1 (%s) works again; switched back to it", self.routes[0])
            return
        reason = next((str(error) for failed, error in failures if failed == left), "")
        logger.warning(
            "proxy route %d (%s) failed: %s; switched to route %d (%s)",
            left + 1,
            self.routes[left],
            reason or "not tried",
            index + 1,
            self.routes[index],
        )

    def _primary_due(self, now: float) -> bool:
        if self.retry_primary_after is None or self._primary_failed_at is None:
            return False
        return now - self._primary_failed_at >= self.retry_primary_after
