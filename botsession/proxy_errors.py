"""Errors of a request's connect phase through proxy routes (they need aiohttp).

Both are aiohttp ``ClientConnectionError``s, so aiogram reports them as ``TelegramNetworkError``
and plain aiohttp code catches them with ``aiohttp.ClientError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import aiohttp

from .errors import BotSessionError

if TYPE_CHECKING:
    from .config_schema import ProxyRoute

Reason = Literal["refused", "unreachable", "timeout", "auth", "rejected", "protocol"]


class ProxyHopError(BotSessionError, aiohttp.ClientConnectionError):
    """A hop of the proxy route failed while a request was connecting.

    ``hop_number`` counts from 1 (the hop the client dials); ``reason`` is one of
    ``refused``, ``unreachable``, ``timeout``, ``auth``, ``rejected``, ``protocol``.
    """

    def __init__(
        self,
        hop_number: int,
        hop_count: int,
        hop: str,
        reason: Reason,
        detail: str,
        *,
        code: int | None = None,
    ) -> None:
        self.hop_number = hop_number
        self.hop_count = hop_count
        self.hop = hop
        self.reason: Reason = reason
        self.detail = detail
        self.code = code
        """The proxy's reply code (SOCKS reply or HTTP status), when it sent one."""
        super().__init__(f"proxy hop {hop_number} of {hop_count} ({hop}): {detail}")


class AllRoutesFailedError(BotSessionError, aiohttp.ClientConnectionError):
    """Connecting failed through the primary route and through every fallback route.

    ``failures`` holds ``(route number, error)`` pairs (numbers count from 1) in the order the
    routes were tried.
    """

    def __init__(
        self, routes: Sequence[ProxyRoute], failures: Sequence[tuple[int, ProxyHopError]]
    ) -> None:
        self.failures = tuple(failures)
        parts = [f"route {number} ({routes[number - 1]}): {error}" for number, error in failures]
        super().__init__(f"all {len(routes)} proxy routes failed: " + "; ".join(parts))
