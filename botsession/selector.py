"""Which route a session connects through: the primary, or a fallback after it failed.

Fallback happens only in the connect phase (a request cannot have been sent yet), so switching
routes never sends a Bot API request twice. The active route sticks; with
``fallback_retry_primary_after`` the primary is tried first again once that long has passed
since it last failed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config_schema import ProxyRoute
    from .proxy_errors import ProxyHopError

logger = logging.getLogger("botsession")


class RouteSelector:
    """The routes of a session (primary first) and which one is active; shared by connections."""

    def __init__(self, routes: tuple[ProxyRoute, ...], retry_primary_after: float | None) -> None:
        self.routes = routes
        self.retry_primary_after = retry_primary_after
        self.active = 0
        self._primary_failed_at: float | None = None

    def order(self, now: float) -> list[int]:
        """Route indexes to try, in order: the active one and those after it, wrapping round."""
        count = len(self.routes)
        order = [(self.active + step) % count for step in range(count)]
        if self.active != 0 and self._primary_due(now):
            order.remove(0)
            order.insert(0, 0)
        return order

    def failed(self, index: int, now: float) -> None:
        """Connecting through route ``index`` failed."""
        if index == 0:
            self._primary_failed_at = now

    def succeeded(self, index: int, failures: list[tuple[int, ProxyHopError]]) -> None:
        """Connecting through route ``index`` worked, after ``failures`` (index, error)."""
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
