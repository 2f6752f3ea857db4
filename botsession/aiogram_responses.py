"""Keeping aiogram's parametrised ``Response[...]`` models alive between requests.

aiogram's ``check_response`` parametrises ``Response[<result type>]`` on every request. pydantic
caches parametrised models only weakly, so once the garbage collector has taken the class it
is built again, schema and all (~80 µs, about 7 % of a getMe round-trip here). Holding each one
keeps the cache warm; there are only as many as the Bot API has result types.
"""

from __future__ import annotations

from typing import Any

from aiogram.methods.base import Response

_KEPT: dict[Any, Any] = {}


def keep_response_model(returning: Any) -> None:
    """Hold ``Response[returning]`` for the life of the process."""
    if returning not in _KEPT:
        _KEPT[returning] = Response[returning]
