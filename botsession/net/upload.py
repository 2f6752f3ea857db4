"""Request bodies that cannot stall: written in chunks, each of which must go out in time.

aiohttp has no write timeout (its read timeout starts once the request is sent), so an upload to
a server that stops reading would wait forever. python-telegram-bot and httpx both bound each
write; their adapters send bodies as a ``TimedPayload`` to keep that promise over aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from aiohttp.abc import AbstractStreamWriter

CHUNK_SIZE = 64 * 1024


class WriteTimeoutError(asyncio.TimeoutError):
    """Writing one chunk of a request body took longer than the write timeout (internal: each
    adapter says it in its framework's words)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"could not send the request within the {seconds:g} s write timeout")
        self.seconds = seconds


class TimedPayload(aiohttp.Payload):
    """A request body written in chunks of ``CHUNK_SIZE`` that each must go out within
    ``write_timeout`` seconds (None: no limit). Bytes are sliced here; a subclass gives the
    chunks of any other content with ``stream_chunks``."""

    def __init__(
        self, content: Any, *, write_timeout: float | None, size: int | None, **kwargs: Any
    ) -> None:
        super().__init__(content, **kwargs)
        self._content = content
        self._write_timeout = write_timeout
        self._size = size

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        if isinstance(self._content, bytes):
            return self._content.decode(encoding, errors)
        raise TypeError("a streamed request body is not decoded")

    async def write(self, writer: AbstractStreamWriter) -> None:
        if isinstance(self._content, bytes):
            view = memoryview(self._content)
            for start in range(0, len(view), CHUNK_SIZE):
                await self._write_chunk(writer, view[start : start + CHUNK_SIZE])
            return
        async for chunk in self.stream_chunks():
            await self._write_chunk(writer, chunk)

    def stream_chunks(self) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def _write_chunk(self, writer: AbstractStreamWriter, chunk: bytes | memoryview) -> None:
        seconds = self._write_timeout
        if seconds is None:
            await writer.write(chunk)
            return
        try:
            async with asyncio.timeout(seconds):  # no task per chunk, unlike wait_for
                await writer.write(chunk)
        except TimeoutError:
            # Closing would wait for the unsent bytes to drain, which is what does not happen:
            # the connection would stay open. Abort it instead.
            transport = getattr(writer, "transport", None)
            if transport is not None:
                transport.abort()
            # aiohttp hands an error while writing to the response, which raises it.
            raise WriteTimeoutError(seconds) from None


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and its causes and contexts, outermost first (each once)."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not other for other in seen):
        seen.append(current)
        yield current
        current = current.__cause__ or current.__context__


def write_timeout_in(error: BaseException) -> WriteTimeoutError | None:
    """The ``WriteTimeoutError`` behind ``error`` (aiohttp wraps it, or not), if any."""
    return next((e for e in causes(error) if isinstance(e, WriteTimeoutError)), None)
