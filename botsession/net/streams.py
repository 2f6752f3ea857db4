"""asyncio streams over a tunnel: what the MTProto clients (Telethon, kurigram) read and write.

Both clients speak through an ``asyncio.StreamReader`` / ``StreamWriter`` pair; the route gives a
``Tunnel``. ``tunnel_streams`` hands the tunnel's connection to asyncio's stream protocol, and the
socket goes back to the router's ``limit`` when the connection is gone.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .tunnel import Tunnel

__all__ = ["abort", "tunnel_streams"]


class _TunnelStreamProtocol(asyncio.StreamReaderProtocol):
    """asyncio's stream protocol on a tunnel: when the connection is gone, the tunnel gives
    its socket back to the router's ``limit``."""

    def __init__(self, reader: asyncio.StreamReader, tunnel: Tunnel) -> None:
        super().__init__(reader)
        self._tunnel = tunnel

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            self._tunnel.release()  # once: the tunnel forgets its callback


def tunnel_streams(tunnel: Tunnel) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A reader and a writer over the tunnel's connection."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(loop=loop)
    protocol = _TunnelStreamProtocol(reader, tunnel)
    # A far end that hung up before the hand-over still ends the reader (``hand_over`` tells
    # the protocol): the clients read their first answer without a timeout.
    transport = tunnel.hand_over(protocol)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


def abort(writer: asyncio.StreamWriter | None) -> None:
    """Drop the connection under ``writer`` at once, if it is still open."""
    if writer is not None and not writer.transport.is_closing():
        writer.transport.abort()
