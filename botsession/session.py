"""The aiogram session: aiogram's ``AiohttpSession`` with a validated, fully-featured route.

This is the only module that imports aiogram.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiogram.client.session.aiohttp import AiohttpSession as _AiogramAiohttpSession
from aiogram.client.session.base import DEFAULT_TIMEOUT
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods.base import Response

from .config_schema import BotSessionConfig, ProxyRoute, TlsSettings
from .connector import connector_arguments
from .factory import connector_spec
from .loader import load_config

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import TelegramMethod
    from aiogram.methods.base import TelegramType

# aiogram's check_response parametrises Response[<result type>] on every request. pydantic
# caches parametrised models only weakly, so once the garbage collector has taken the class it
# is built again, schema and all (~80 µs, about 7 % of a getMe round-trip here). Holding each
# one keeps the cache warm; there are only as many as the Bot API has result types.
_RESPONSE_TYPES: dict[Any, Any] = {}


class AiohttpSession(_AiogramAiohttpSession):
    """Drop-in for aiogram's ``AiohttpSession`` that validates the proxy and keeps, with a
    proxy, the connection ``limit``, the TLS context and ``connect_timeout``.

    ``proxy`` takes every form ``load_config`` accepts (URL, mapping, ``(url, BasicAuth)``, a
    chain); a bad one raises ``ConfigError``. Other keyword arguments go to aiogram.
    """

    def __init__(
        self,
        proxy: Any = None,
        limit: int = 100,
        *,
        connect_timeout: float = 10.0,
        ssl: TlsSettings | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(limit=limit, **kwargs)
        self._config = load_config(
            BotSessionConfig(),
            proxy=proxy,
            limit=limit,
            connect_timeout=connect_timeout,
            timeout=kwargs.get("timeout", DEFAULT_TIMEOUT),
            ssl=ssl if ssl is not None else TlsSettings(),
        )
        self._use(self._config)

    @classmethod
    def from_config(cls, config: BotSessionConfig) -> AiohttpSession:
        """The session described by a loaded configuration."""
        api = TelegramAPIServer.from_base(config.api.base, is_local=config.api.is_local)
        session = cls(limit=config.limit, api=api, timeout=config.timeout)
        session._use(config)
        return session

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in _RESPONSE_TYPES:
            _RESPONSE_TYPES[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)

    @property
    def config(self) -> BotSessionConfig:
        """The validated settings the connections are made with."""
        return self._config

    @property  # type: ignore[override]
    def proxy(self) -> ProxyRoute | None:
        """The validated route, or None for direct connections."""
        return self._config.proxy

    @proxy.setter
    def proxy(self, proxy: Any) -> None:
        # Validate first: a bad value leaves the session as it was.
        config = load_config(self._config, proxy=proxy)
        self._use(config)
        self._should_reset_connector = True

    def _use(self, config: BotSessionConfig) -> None:
        self._config = config
        self._connector_type, self._connector_init = connector_arguments(connector_spec(config))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(proxy={self.proxy!r}, limit={self._config.limit}, "
            f"api={self.api.base.split('/bot{token}')[0]!r})"
        )
