"""kurigram clients pointed at the stand-in data center (tests/mtproto_dc.py).

kurigram takes a DC's address from its session storage, and writes the real DC 2 into a fresh
one: ``LoopbackStorage`` always answers with the stand-in's address instead. ``authorized``
fills a storage as a logged-in bot's session (an auth key), so that ``connect()`` starts the
session at once instead of exchanging a key first.
"""

from __future__ import annotations

import os
from typing import Any

from pyrogram import Client
from pyrogram.storage import SQLiteStorage

API_HASH = "0" * 32


class LoopbackStorage(SQLiteStorage):
    """An in-memory session whose DC address is always ``dc`` (host, port)."""

    def __init__(self, dc: tuple[str, int]) -> None:
        super().__init__("test", workdir=".", in_memory=True)
        self._dc = dc

    async def server_address(self, value: Any = object) -> str:
        return self._dc[0]

    async def port(self, value: Any = object) -> int:
        return self._dc[1]


class _OpenedStorage(LoopbackStorage):
    """A storage already opened and filled: kurigram's ``open()`` would start it afresh."""

    async def open(self) -> None:
        return None


async def authorized(dc: tuple[str, int]) -> LoopbackStorage:
    """A bot's session on DC 2 (at ``dc``) with an auth key, as after a first login."""
    storage = _OpenedStorage(dc)
    await SQLiteStorage.open(storage)
    await storage.dc_id(2)
    await storage.api_id(1)
    await storage.test_mode(False)
    await storage.auth_key(os.urandom(256))
    await storage.user_id(1)
    await storage.is_bot(True)
    await storage.date(0)
    return storage


def client_for(
    connection: type[Any],
    dc: tuple[str, int],
    *,
    storage: LoopbackStorage | None = None,
    **options: Any,
) -> Client:
    """A kurigram client whose connections are ``connection`` and whose DC is ``dc``."""
    return Client(
        "test",
        api_id=1,
        api_hash=API_HASH,
        storage_engine=storage or LoopbackStorage(dc),
        connection_factory=connection,
        no_updates=True,
        **options,
    )
