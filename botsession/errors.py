"""Every error botsession raises, and the one table that turns low-level failures into reasons.

Error tree::

    BotSessionError                  base class of everything botsession raises
    ├── ConfigError (ValueError)     the configuration is invalid: YAML syntax, types, ranges,
    │                                protocols, unknown keys, unreadable files, undefined ${VAR}s.
    │                                Carries every problem at once in ``.problems``.
    ├── MissingExtraError            an adapter was used without its framework installed (aiogram,
    │   (ImportError)                python-telegram-bot, httpx); names the extra to install.
    └── RouteError                   connecting through a proxy route failed. Only the connect
        │                            phase fails this way, so no request was sent.
        ├── ProxyHopError            one hop of a route failed: ``hop_number`` (from 1),
        │                            ``reason`` (see ``Reason``) and a ``detail`` for people.
        ├── AllRoutesFailedError     the primary route and every fallback route failed;
        │                            ``failures`` lists each route's ProxyHopError.
        └── SessionClosedError       the session was closed while the request was connecting.

A framework sees a ``RouteError`` as its own network error: the aiohttp connector raises it as
an ``aiohttp.ClientConnectionError`` too (aiogram then raises ``TelegramNetworkError``), by way
of ``framework_error``. ``isinstance(error, ProxyHopError)`` holds either way.

``BotSessionWarning`` (a ``UserWarning``) marks configurations that work but probably do not do
what was meant. No message, ``str`` or ``repr`` of these contains a password.

``RedactedError`` is never raised: it stands in, in the ``__cause__`` / ``__context__`` chain of
an error that leaves botsession, for a framework's exception whose text showed a secret that
could not be removed from it (``botsession.redaction.redact_exception``).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar


class BotSessionError(Exception):
    """Base class of every error botsession raises."""


# --- configuration -----------------------------------------------------------------------


class BotSessionWarning(UserWarning):
    """A configuration that works but probably does not do what was meant (a DNS lookup in
    the clear, a hop order that a set cannot keep, a readable file holding a password)."""


_INTERNAL_PACKAGES = frozenset({"botsession", "pydantic", "pydantic_settings", "pydantic_core"})


def outside_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside botsession/pydantic."""
    frame = sys._getframe(2)  # the caller of the function that warns
    level = 2
    while frame.f_back is not None:
        if frame.f_globals.get("__name__", "").partition(".")[0] not in _INTERNAL_PACKAGES:
            break
        frame = frame.f_back
        level += 1
    return level


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration, and where it came from.

    ``where`` is the source: ``bot.yaml:5:5``, ``environment variable BOT_PROXY``,
    ``keyword argument proxy=``. ``path`` is the setting: ``proxy[1].url``.
    """

    where: str
    """Where the bad value was written: a file position, an environment variable, a keyword."""
    path: str
    """Which setting: ``proxy[1].url``, ``fallback[0]``, ``timeout``; empty for the whole."""
    message: str
    """What is wrong and, where it helps, what to write instead. It never shows a secret."""

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


# --- installing --------------------------------------------------------------------------


class MissingExtraError(BotSessionError, ImportError):
    """An adapter was used without its framework installed: ``needed_by`` (what was called or
    imported) needs ``package``, which botsession's extra ``extra`` installs."""

    def __init__(self, needed_by: str, package: str, extra: str, module: str | None = None) -> None:
        self.needed_by, self.package, self.extra = needed_by, package, extra
        super().__init__(
            f"{needed_by} needs {package}: pip install 'botsession[{extra}]' "
            f"(or: pip install -e '.[{extra}]' from a checkout)",
            name=module,  # the module that could not be imported, as ImportError has it
        )

    def naming(self, needed_by: str) -> MissingExtraError:
        """The same error about ``needed_by``: the name the user called, not the module."""
        return MissingExtraError(needed_by, self.package, self.extra, self.name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (MissingExtraError, (self.needed_by, self.package, self.extra, self.name))


# --- connecting --------------------------------------------------------------------------

Reason = Literal[
    "refused",  # TCP to hop 1 was refused: nothing listens there
    "unreachable",  # TCP to hop 1 failed otherwise (no route to host, network down)
    "dns",  # a name this machine had to resolve did not resolve
    "timeout",  # no answer within connect_timeout
    "closed",  # the proxy closed the connection before its reply was complete
    "reset",  # the connection was reset
    "protocol",  # the reply is not what the protocol allows (wrong kind of server?)
    "auth",  # credentials missing or rejected
    "rejected",  # the proxy refused to connect to the next address
    "request",  # the request cannot be expressed in this hop's protocol
    "tls",  # TLS with an https proxy or the server failed (certificate refused, broken handshake)
]


def route_name(index: int) -> str:
    """A route's name as the configuration writes it, in every message: ``proxy`` for index 0,
    then ``fallback[0]``, ``fallback[1]``, …"""
    return "proxy" if index == 0 else f"fallback[{index - 1}]"


class RouteError(BotSessionError):
    """Connecting through a proxy route failed; nothing was sent."""


class ProxyHopError(RouteError):
    """A hop of the proxy route failed while a connection was being made.

    ``hop_number`` counts from 1 (the hop the client dials); ``reason`` is one of ``Reason``;
    ``code`` is the proxy's reply code (SOCKS reply or HTTP status) when it sent one.
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
        super().__init__(f"proxy hop {hop_number} of {hop_count} ({hop}): {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        arguments = (self.hop_number, self.hop_count, self.hop, self.reason, self.detail)
        return (_rebuild_hop_error, (*arguments, self.code))


def _rebuild_hop_error(*arguments: Any) -> ProxyHopError:
    *positional, code = arguments
    return ProxyHopError(*positional, code=code)


class AllRoutesFailedError(RouteError):
    """Connecting failed through the primary route and through every fallback route.

    ``failures`` holds ``(route number, error)`` pairs (numbers count from 1) in the order the
    routes were tried; the message names each route as the configuration does (``proxy``,
    ``fallback[0]``, …).
    """

    def __init__(
        self, routes: Sequence[object], failures: Sequence[tuple[int, ProxyHopError]]
    ) -> None:
        self.failures = tuple(failures)
        parts = [
            f"route {route_name(number - 1)} ({routes[number - 1]}): {error}"
            for number, error in failures
        ]
        super().__init__(f"all {len(routes)} proxy routes failed: " + "; ".join(parts))


class RedactedError(Exception):
    """Stands in, in an exception chain, for an exception whose text showed a secret; its
    message is that exception's type and text with the secret masked."""


class SessionClosedError(RouteError):
    """The session was closed (``close()``, PTB's ``shutdown()``, httpx's ``aclose()``) while
    a request was connecting through its routes: the attempts were given up, nothing was
    sent."""

    def __init__(self) -> None:
        super().__init__(
            "the session was closed while connecting through the proxy routes; nothing was sent"
        )


class HandshakeError(Exception):
    """A proxy's reply refused the request or broke its protocol (internal: always reported
    as a ``ProxyHopError``)."""

    def __init__(self, reason: Reason, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.code = code


class CertificateMismatch(HandshakeError):
    """The server's certificate, through the route, is not the one pinned with aiohttp's
    ``Fingerprint`` (internal: reported as a ``ProxyHopError`` with reason ``tls``)."""

    def __init__(self, expected: bytes, got: bytes) -> None:
        super().__init__(
            "tls",
            f"the server's certificate (sha256 {got.hex()[:16]}…) is not the pinned one "
            f"(sha256 {expected.hex()[:16]}…): the server changed its certificate, or something "
            "on this route intercepts the connection",
        )
        self.expected = expected
        self.got = got


class ClosedError(EOFError):
    """The other side closed the connection before a reply was complete (internal)."""


# The one table from what can go wrong while connecting to a reason. First match wins, so
# specific types come before their bases (gaierror and the connection errors are OSErrors).
_REASONS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], Reason], ...] = (
    (socket.gaierror, "dns"),
    (ssl.SSLError, "tls"),
    (ConnectionRefusedError, "refused"),
    ((ConnectionResetError, ConnectionAbortedError, BrokenPipeError), "reset"),
    ((ClosedError, EOFError, asyncio.IncompleteReadError), "closed"),
    ((TimeoutError, asyncio.TimeoutError), "timeout"),
    (OSError, "unreachable"),
    (UnicodeError, "request"),
)


def reason_of(error: BaseException) -> Reason:
    """Why ``error`` made a connection attempt fail (unknown errors are ``protocol``)."""
    if isinstance(error, HandshakeError):
        return error.reason
    for types, reason in _REASONS:
        if isinstance(error, types):
            return reason
    return "protocol"


E = TypeVar("E", bound=RouteError)


def framework_error(error: E, base: type[Exception]) -> E:
    """``error`` as an instance of a class that is also a ``base`` (say, aiohttp's
    ``ClientConnectionError``), so that a framework treats it as its own network error."""
    if isinstance(error, base):
        return error
    key = (type(error), base)
    flavour: Any = _FLAVOURS.get(key)
    if flavour is None:
        namespace = {"__module__": key[0].__module__, "__doc__": key[0].__doc__}
        flavour = _FLAVOURS[key] = type(key[0].__name__, key, namespace)
    flavoured: E = flavour.__new__(flavour)
    flavoured.__dict__.update(error.__dict__)
    flavoured.args = error.args
    flavoured.__cause__ = error.__cause__
    return flavoured.with_traceback(error.__traceback__)


_FLAVOURS: dict[tuple[type[RouteError], type[Exception]], Any] = {}


def tell_where(error: Exception, where: str) -> None:
    """Add ``where`` (the route a connection went through) to the text of a framework's own
    network error — aiohttp's "Connection reset by peer", "Server disconnected" — keeping its
    class, so that each framework reports it as it would, naming the route."""
    if isinstance(error, OSError) and error.strerror is not None:
        error.strerror = f"{error.strerror} ({where})"
    elif error.args and isinstance(error.args[0], str):
        error.args = (f"{error.args[0]} ({where})", *error.args[1:])
        if isinstance(getattr(error, "message", None), str):
            error.message = error.args[0]  # type: ignore[attr-defined]
    else:
        error.args = (*error.args, where)
