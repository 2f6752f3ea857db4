"""The aiogram session: aiogram's ``AiohttpSession`` with a validated, fully-featured route.

This module and ``aiogram_responses``, which only it imports, are the only ones that import
aiogram (``pip install 'botsession[aiogram]'``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, MissingExtraError

try:
    from aiogram.client.session.aiohttp import AiohttpSession as _AiogramAiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
except ImportError as missing:
    raise MissingExtraError(__name__, "aiogram 3", "aiogram", missing.name) from missing

from .aiogram_responses import keep_response_model
from .config_schema import BotSessionConfig, ProxyRoute, TlsSettings
from .net.connector import connector_arguments, resending
from .net.routing import ConnectorSpec, Router, RouteStatus
from .redaction import Secrets, redact_exception, secret_of_token, token_secrets
from .sources import LoadedConfig, Reading, collect

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import TelegramMethod
    from aiogram.methods.base import Response, TelegramType
    from aiohttp import ClientSession


class AiohttpSession(_AiogramAiohttpSession):
    """Drop-in for aiogram's ``AiohttpSession`` that validates the proxy and keeps, with a
    proxy, the connection ``limit``, the TLS context and ``connect_timeout``.

    ``proxy`` takes every form ``load_config`` accepts (URL, mapping, ``(url, BasicAuth)``, a
    chain); a bad one raises ``ConfigError``. Settings left out take the schema's defaults
    (``BotSessionConfig``). Other keyword arguments go to aiogram.
    """

    def __init__(
        self,
        proxy: Any = None,
        limit: int | None = None,
        *,
        connect_timeout: float | None = None,
        ssl: TlsSettings | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        given = {
            "proxy": proxy,
            "limit": limit,
            "connect_timeout": connect_timeout,
            "ssl": ssl,
            "timeout": kwargs.get("timeout"),
        }
        # Only what was given is validated against the schema, which supplies every default.
        loaded = _revalidated(
            _EMPTY, {key: value for key, value in given.items() if value is not None}
        )
        del proxy, ssl, given  # raw input (passwords) stays out of the traceback's locals
        if isinstance(loaded, ConfigError):
            raise loaded
        self._start(loaded.config, **kwargs)

    @classmethod
    def from_config(cls, config: BotSessionConfig) -> AiohttpSession:
        """The session described by an already validated configuration (not validated again)."""
        api = TelegramAPIServer.from_base(config.api.base, is_local=config.api.is_local)
        session = cls.__new__(cls)
        session._start(config, api=api, timeout=config.timeout)
        return session

    def _start(self, config: BotSessionConfig, **kwargs: Any) -> None:
        kwargs.setdefault("timeout", config.timeout)
        super().__init__(limit=config.limit, **kwargs)
        self._use(config)

    async def create_session(self) -> ClientSession:
        """aiogram's session, with the middleware that sends a provably unsent request once
        more (``resend_unsent``); aiogram makes the session and gives no way to pass it."""
        session = await super().create_session()  # aiogram calls this for every request
        if not session._middlewares and session.connector is not None:
            session._middlewares = resending(session.connector)
        return session

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        try:
            return await super().make_request(bot, method, timeout)
        except BaseException as error:
            # aiohttp's errors quote the URL, and the URL holds the token (/bot<token>/getMe):
            # whatever leaves here, chained errors and their tracebacks' locals included, is
            # cleaned of it first.
            redact_exception(error, secret_of_token(bot.token))
            raise

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        """aiogram's download stream; its errors (a file URL holds the token) are cleaned as
        ``make_request``'s are."""
        secrets = Secrets(token_secrets(url))
        chunks = super().stream_content(url, headers, timeout, chunk_size, raise_for_status)
        del url  # out of this frame's locals
        try:
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    yield chunk
        except BaseException as error:
            redact_exception(error, secrets)
            raise

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        keep_response_model(method.__returning__)
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
        loaded = _revalidated(self._config, {"proxy": proxy})
        del proxy  # as in __init__
        if isinstance(loaded, ConfigError):
            raise loaded
        self._use(loaded.config)
        self._should_reset_connector = True

    def route_status(self) -> tuple[RouteStatus, ...]:
        """For each route (primary first): its state — ``active``, ``standby`` or ``failed`` —,
        its last error (passwords masked), when the state last changed and how long each hop
        took to answer the last time. Empty for a direct connection."""
        router = self._connector_init.get("router")
        return router.route_status() if isinstance(router, Router) else ()

    def _use(self, config: BotSessionConfig) -> None:
        self._config = config
        spec = ConnectorSpec.from_config(config)
        self._connector_type, self._connector_init = connector_arguments(spec)

    def __repr__(self) -> str:
        config = getattr(self, "_config", None)  # None while __init__ has not finished
        if config is None:
            return f"<{type(self).__name__} (not initialised)>"
        return (
            f"{type(self).__name__}(proxy={config.proxy!r}, limit={config.limit}, "
            f"api={self.api.base.split('/bot{token}')[0]!r})"
        )


def _revalidated(
    config: BotSessionConfig, overrides: dict[str, Any]
) -> LoadedConfig[BotSessionConfig] | ConfigError:
    """``config`` with ``overrides`` laid over it, validated (the error returned, not raised)."""
    return collect(BotSessionConfig, config, Reading(), overrides)


_EMPTY = BotSessionConfig.model_construct()
"""The schema's defaults, not read from anywhere: a drop-in session takes only its arguments."""
