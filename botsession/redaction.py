"""The one place where secrets are masked before anything is shown.

Everything botsession prints, raises or logs goes through here: URLs lose the password in their
userinfo, Telegram proxy links their ``pass=`` (and MTProto links their ``secret=``), Bot API
URLs the secret part of the bot token (``/bot123456:***/getMe``: the number before the colon is
the bot's public id), values at a ``password`` key are replaced, and known secrets are scrubbed
from finished messages as a last line of defence. ``redact_exception`` does the same to an
exception and everything chained to it, their tracebacks' local variables included, before a
framework's error leaves botsession.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import re
import string
import sys
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from .errors import RedactedError

MASK = "***"

_WHITESPACE = re.compile(r"\s+")
_SCHEME_CHARS = frozenset(string.ascii_letters + string.digits + "+.-")
_NOT_IN_USER = frozenset("@/[]")
_NOT_IN_USER_OF_TEXT = _NOT_IN_USER | frozenset(" \t\n\r\f\v")

# Secrets shorter than this are masked structurally only: scrubbing "pw" from free text would
# garble unrelated words without protecting anything.
_MIN_SCRUB_LENGTH = 4

_MAX_SHOWN = 120

_MAX_SCRUB_WORK = 100_000_000
"""Characters ``scrub_texts`` may compare: enough for hundreds of secrets in a hundred
messages; only thousands of secrets that resemble the messages' text need more."""
_PIECES = 8
"""How many 4-character pieces of a secret are looked up before the secret is searched for."""

# A Telegram proxy link's password (t.me/socks?…&pass=…) and an MTProto link's secret
# (t.me/proxy?…&secret=…). A value ends at the next parameter; in free text also at whitespace
# or a quote. No nested repetition: linear time on any input.
_LINK_SECRET_OF_VALUE = re.compile(r"([?&](?:pass|secret)=)([^&#]*)", re.IGNORECASE)
_LINK_SECRET_OF_TEXT = re.compile(r"([?&](?:pass|secret)=)([^&#\s'\"]*)", re.IGNORECASE)
# A bot token in a Bot API URL: …/bot<id>:<secret>/<method>, …/file/bot<id>:<secret>/<path>
# (the colon maybe percent-encoded). The secret runs to the end of the path segment; in free
# text also to whitespace, a quote or a bracket. No nested repetition: linear time.
_TOKEN_IN_URL = re.compile(r"(/bot[0-9]+(?::|%3[Aa]))([^/?#\s'\"<>()\[\]\\]+)")


def redact_url(text: str, *, value: bool = False) -> str:
    """Return ``text`` with the password of every ``scheme://user:password@`` replaced.

    A password may hold spaces, tabs or line breaks, and an unencoded "@", "/" or "#", so no
    character ends it but the last "@" of the text: everything from the first password to the
    last "@" is masked, later passwords included (over-masking is safe, under-masking is not).
    In free text a user name has no whitespace (so prose such as "http:// or https:" is left
    alone); with ``value=True`` the text is one raw value, read as the URL parser reads it,
    whose user name may hold anything but "@", "/", "[" and "]".
    Linear time: a regular expression for this backtracks quadratically on hostile input.

    The ``pass=`` and ``secret=`` of Telegram proxy links and the secret part of bot tokens in
    Bot API URLs (``/bot<id>:***``) are masked as well.
    """
    span = _password_span(text, value=value)
    if span is not None:
        text = text[: span[0]] + MASK + text[span[1] :]
    if "/bot" in text:
        text = _TOKEN_IN_URL.sub(lambda match: match[1] + MASK, text)
    if "=" not in text:
        return text
    pattern = _LINK_SECRET_OF_VALUE if value else _LINK_SECRET_OF_TEXT
    return pattern.sub(lambda match: match[1] + (MASK if match[2] else ""), text)


def token_secrets(text: str) -> set[str]:
    """The secret parts of the bot tokens in the Bot API URLs in ``text`` (as written and
    percent-decoded), to be scrubbed wherever else they appear."""
    found: set[str] = set()
    if "/bot" in text:
        for match in _TOKEN_IN_URL.finditer(text):
            if match[2] != MASK:
                found.update({match[2], unquote(match[2])})
    return found


def secret_of_token(token: str) -> set[str]:
    """The secret part of a bot token ``<id>:<secret>`` (the whole token when it has no
    colon): what must never be shown of it."""
    _id, colon, secret = token.partition(":")
    return {secret if colon else token}


class Secrets:
    """Secrets kept for scrubbing later, in a variable that never shows them: its ``repr`` (all
    a traceback recorded with local variables shows of it) only counts them."""

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[str]) -> None:
        self._values = frozenset(values)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __repr__(self) -> str:
        return f"<{len(self._values)} secrets>"


def _link_secrets(text: str, *, key: str | None = None) -> Iterator[str]:
    """The non-empty ``pass=`` and ``secret=`` values of the value ``text`` (or only ``key``'s)."""
    for match in _LINK_SECRET_OF_VALUE.finditer(text):
        if match[2] and (key is None or match[1][1:-1].lower() == key):
            yield match[2]


def _password_span(text: str, *, value: bool) -> tuple[int, int] | None:
    """From the first ``scheme://user:`` password to the last "@" of ``text``."""
    at = text.rfind("@")
    separator = text.find("://", 0, at) if at > 0 else -1
    not_in_user = _NOT_IN_USER if value else _NOT_IN_USER_OF_TEXT
    while separator != -1:
        start = separator
        while start > 0 and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        while start < separator and not text[start].isalpha():
            start += 1
        user_start = separator + 3
        # Each search stops at the next "://" at the latest (it holds a ":"): linear overall.
        colon = text.find(":", user_start, at)
        if start < separator and colon != -1 and not_in_user.isdisjoint(text[user_start:colon]):
            return colon + 1, at
        separator = text.find("://", user_start, at)
    return None


def has_url_password(text: str) -> bool:
    """Whether the value ``text`` holds a ``scheme://user:password@`` with a password, or a
    Telegram proxy link with a ``pass=``."""
    if _password_span(text, value=True) is not None:
        return True
    return "=" in text and any(_link_secrets(text, key="pass"))


def _url_passwords(text: str) -> Iterator[str]:
    """The link secrets of the value ``text``, its password span, and that of each
    whitespace-separated word.

    The span of the whole value covers every password in it; the words' spans are the likely
    passwords when ``text`` holds several URLs, so that they are scrubbed wherever they appear.
    """
    if "=" in text:
        yield from _link_secrets(text)
    span = _password_span(text, value=True)
    if span is None:
        return
    yield text[span[0] : span[1]]
    for word in _WHITESPACE.split(text):
        span = _password_span(word, value=True)
        if span is not None:
            yield word[span[0] : span[1]]


def is_secret_key(key: object) -> bool:
    """Whether a mapping key names a secret value."""
    return isinstance(key, str) and key.lower() == "password"


def describe_value(path: tuple[str | int, ...], value: Any) -> str:
    """A short, redacted rendering of a user-supplied value for an error message."""
    if path and is_secret_key(path[-1]):
        return MASK
    if isinstance(value, str):
        shown = redact_url(value, value=True)
    elif isinstance(value, Mapping):
        shown = "a mapping with keys " + ", ".join(sorted(map(str, value)))
    elif isinstance(value, (list, tuple)):
        shown = f"a list of {len(value)} items"
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1000:
        # repr() refuses integers of more than 4,300 digits (sys.get_int_max_str_digits).
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    else:
        shown = redact_url(repr(value), value=True)
        return shown if len(shown) <= _MAX_SHOWN else shown[: _MAX_SHOWN - 3] + "..."
    if len(shown) > _MAX_SHOWN:
        shown = shown[: _MAX_SHOWN - 3] + "..."
    return repr(shown) if isinstance(value, str) else shown


def collect_secrets(value: Any) -> set[str]:
    """Every secret reachable in a raw configuration value (passwords, URL passwords, BasicAuth)."""
    found: set[str] = set()
    _collect(value, found, depth=0)
    return found


def _collect(value: Any, found: set[str], depth: int) -> None:
    if depth > 20:  # raw input is shallow; a deeper structure is not a configuration
        return
    if isinstance(value, str):
        for secret in _url_passwords(value):
            found.update({secret, unquote(secret)})
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if is_secret_key(key) and isinstance(item, str):
                found.add(item)
            else:
                _collect(item, found, depth + 1)
        return
    basic_auth = _basic_auth_type()
    if basic_auth is not None and isinstance(value, basic_auth):
        found.add(value.password)
        return
    if isinstance(value, Iterable) and not isinstance(value, (bytes, bytearray)):
        for item in value:
            _collect(item, found, depth + 1)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every known secret (long enough to be recognisable) in ``text``, then mask what
    looks like a URL password (``redact_url``): for text that may quote raw input."""
    return redact_url(scrub_secrets(text, secrets))


def scrub_secrets(text: str, secrets: Iterable[str]) -> str:
    """Replace every known secret (long enough to be recognisable, the longest first) and the
    bot token of every Bot API URL in ``text``, and nothing else: for text whose URLs are
    already masked (botsession's own messages name hops as ``socks5://u:***@host``), where
    guessing at passwords would mask a stretch of a good message."""
    return _scrub_longest_first(text, sorted(secrets, key=len, reverse=True))


def _scrub_longest_first(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if len(secret) >= _MIN_SCRUB_LENGTH and secret in text:
            text = text.replace(secret, MASK)
    if "/bot" in text:
        text = _TOKEN_IN_URL.sub(lambda match: match[1] + MASK, text)
    return text


def scrub_texts(texts: Sequence[str], secrets: Iterable[str]) -> list[str] | None:
    """``scrub`` of each of ``texts``, in time linear in their length and in the secrets.

    Searching every text for every secret takes their product: a configuration with 30,000
    passwords and as many problems would take minutes. A secret is searched for only when
    some of its 4-character pieces (the first, the last and a few between) occur in the texts.
    Returns None when even that would take over ``_MAX_SCRUB_WORK`` (thousands of secrets that
    resemble the texts: hostile input): then none of the texts may be shown.
    """
    joined = "\x00".join(texts)
    longest = max(map(len, texts), default=0)
    wanted = {s for s in secrets if _MIN_SCRUB_LENGTH <= len(s) <= longest}
    if wanted:
        size = _MIN_SCRUB_LENGTH
        pieces = {joined[i : i + size] for i in range(len(joined) - size + 1)}
        wanted = {secret for secret in wanted if _pieces_occur(secret, pieces)}
    if len(wanted) * len(joined) > _MAX_SCRUB_WORK:
        return None
    # Each secret present is looked up in the texts that hold it only: the work is the texts'
    # length plus the places where secrets occur, not texts times secrets.
    starts = list(itertools.accumulate((len(text) + 1 for text in texts[:-1]), initial=0))
    holding: list[list[str]] = [[] for _ in texts]
    for secret in wanted:
        at = joined.find(secret)
        while at != -1:
            index = bisect.bisect_right(starts, at) - 1
            holding[index].append(secret)
            following = index + 1
            at = joined.find(secret, starts[following]) if following < len(starts) else -1
    return [
        redact_url(_scrub_longest_first(text, sorted(held, key=len, reverse=True)))
        for text, held in zip(texts, holding, strict=True)
    ]


def _pieces_occur(secret: str, pieces: set[str]) -> bool:
    size = _MIN_SCRUB_LENGTH
    last = len(secret) - size
    steps = min(_PIECES - 1, last) or 1
    return all(
        secret[i : i + size] in pieces for i in {last * k // steps for k in range(steps + 1)}
    )


def _basic_auth_type() -> type[Any] | None:
    # aiohttp is only loaded if the caller already imported it: a BasicAuth cannot exist otherwise,
    # and importing aiohttp here would slow down ``load_config`` for everyone.
    aiohttp = sys.modules.get("aiohttp")
    return getattr(aiohttp, "BasicAuth", None)


# --- log records ---------------------------------------------------------------------------


class TokenMask(logging.Filter):
    """A logging filter that masks bot tokens in a record's message and arguments: for the
    loggers of the frameworks botsession drives, which log Bot API URLs themselves (httpx each
    request at INFO, python-telegram-bot its Bot API URL at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_url(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_masked_argument(argument) for argument in record.args)
        return True


def _masked_argument(value: object) -> object:
    text = value if isinstance(value, str) else str(value)
    return redact_url(text) if "/bot" in text else value


_TOKEN_MASK = TokenMask()


def mask_tokens_in_log(*names: str) -> None:
    """Put the token mask on the loggers ``names`` (once each)."""
    for name in names:
        named = logging.getLogger(name)
        if _TOKEN_MASK not in named.filters:
            named.addFilter(_TOKEN_MASK)


# --- exceptions ------------------------------------------------------------------------------


def redact_exception(error: BaseException, secrets: Iterable[str] = ()) -> None:
    """Make ``error`` and every exception chained to it (``__cause__``, ``__context__``, the
    members of exception groups) safe to show, in place.

    Their arguments, string attributes (aiogram's ``message``, aiohttp's ``request_info`` URLs,
    OSError's ``strerror`` and file names) and notes lose ``secrets`` and every bot token of a
    Bot API URL; a chained exception whose text still shows one (a ``__str__`` computed from
    state that cannot be reached) is replaced by a ``RedactedError`` saying what it was. Each
    exception is looked at once, however long the chain or large the group: the work is linear
    in their number, and a cycle ends. The frames of their tracebacks that have finished running
    lose their local variables, so a traceback recorded with locals (Sentry, rich,
    ``capture_locals``) cannot show a URL that a framework kept in one; the lines of the
    traceback stay.
    """
    chain = list(_chain(error))
    known = set(secrets)
    for exception in chain:
        known |= token_secrets(_text_of(exception))
    for exception in chain:
        _scrub_exception(exception, known)
    for exception in chain:
        for name in ("__cause__", "__context__"):
            linked = getattr(exception, name)
            if linked is not None and _shows_secret(_text_of(linked), known):
                setattr(exception, name, _stand_in(linked, known))
    for exception in chain:
        traceback.clear_frames(exception.__traceback__)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        if isinstance(current, BaseExceptionGroup):
            pending += current.exceptions


def _text_of(error: BaseException) -> str:
    try:
        return f"{error}\n{error!r}\n" + "\n".join(getattr(error, "__notes__", None) or ())
    except Exception:  # a broken __str__ shows nothing, so it leaks nothing
        return ""


def _shows_secret(text: str, secrets: Iterable[str]) -> bool:
    if token_secrets(text):
        return True
    return any(len(secret) >= _MIN_SCRUB_LENGTH and secret in text for secret in secrets)


def _scrub_exception(error: BaseException, secrets: set[str]) -> None:
    error.args = _scrubbed(error.args, secrets, depth=0)
    for name, value in list(getattr(error, "__dict__", {}).items()):
        cleaned = _scrubbed(value, secrets, depth=0)
        if cleaned is not value:
            try:
                setattr(error, name, cleaned)
            except (AttributeError, TypeError):  # a read-only attribute: checked afterwards
                continue
    if isinstance(error, OSError):
        for name in ("strerror", "filename", "filename2"):
            value = getattr(error, name)
            if isinstance(value, str):
                setattr(error, name, scrub_secrets(value, secrets))


def _scrubbed(value: Any, secrets: set[str], *, depth: int) -> Any:
    """``value`` without ``secrets``: the same object when it shows none, else a copy of the
    same type where that can be made (text, tuples, lists, named tuples, URL objects)."""
    if isinstance(value, str):
        cleaned = scrub_secrets(value, secrets)
        return value if cleaned == value else cleaned
    if depth > 4 or isinstance(value, (bytes, bytearray, int, float, type(None))):
        return value
    if not isinstance(value, (tuple, list)):
        return _rebuilt(value, secrets)
    items = [_scrubbed(item, secrets, depth=depth + 1) for item in value]
    if all(new is old for new, old in zip(items, value, strict=True)):
        return value
    fields = getattr(value, "_fields", None)
    if fields is not None:  # a named tuple, such as aiohttp's RequestInfo
        named: Any = value
        return named._replace(**dict(zip(fields, items, strict=True)))
    return items if isinstance(value, list) else tuple(items)


def _rebuilt(value: Any, secrets: set[str]) -> Any:
    """An object that shows a secret, rebuilt from its cleaned text (a URL object); else the
    object itself, for the caller to check again."""
    try:
        text = str(value)
        if not _shows_secret(text, secrets):
            return value
        rebuilt = type(value)(scrub_secrets(text, secrets))
    except Exception:  # it cannot be shown, or not made from its text: checked afterwards
        return value
    return value if _shows_secret(str(rebuilt), secrets) else rebuilt


def _stand_in(error: BaseException, secrets: set[str]) -> RedactedError:
    """A ``RedactedError`` for ``error``, whose text could not be cleaned, with its chain."""
    what = f"{type(error).__module__}.{type(error).__qualname__}"
    first_line = _text_of(error).split("\n", 1)[0]
    stand_in = RedactedError(f"{what}: {scrub_secrets(first_line, secrets)}")
    stand_in.__cause__ = error.__cause__
    stand_in.__context__ = error.__context__
    stand_in.__suppress_context__ = error.__suppress_context__
    return stand_in
