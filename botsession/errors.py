"""Errors raised by botsession.

Error tree::

    BotSessionError                 base class of everything botsession raises
    ├── ConfigError (ValueError)    the configuration is invalid: YAML syntax, types, ranges,
    │                               protocols, unknown keys, missing files, undefined ${VAR}s.
    │                               Carries every problem at once in ``.problems``.
    ├── ProxyHopError               a proxy hop failed while a request was connecting: refused,
    │   (aiohttp.ClientConnectionError)  timed out, credentials or request rejected, protocol
    │                               error. Names the hop (``hop_number``) and the ``reason``.
    └── AllRoutesFailedError        the primary route and every fallback route failed; lists
        (aiohttp.ClientConnectionError)  each route's ProxyHopError in ``failures``.

The last two live in ``botsession.proxy_errors`` (they need aiohttp); aiogram turns both into
``TelegramNetworkError``.

No message, ``str`` or ``repr`` of these errors contains a password.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class BotSessionError(Exception):
    """Base class of every error botsession raises."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration, and where it came from.

    ``where`` is the source: ``bot.yaml:5:5``, ``environment variable BOT_PROXY``,
    ``keyword argument proxy=``. ``path`` is the setting: ``proxy[1].url``.
    """

    where: str
    path: str
    message: str

    def __str__(self) -> str:
        subject = f"{self.path}: " if self.path else ""
        return f"{self.where}: {subject}{self.message}"


class ConfigError(BotSessionError, ValueError):
    """The configuration is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"invalid botsession configuration ({count} {noun}):"]
        lines.extend(f"  - {problem}" for problem in self.problems)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"ConfigError({len(self.problems)} problems)"
