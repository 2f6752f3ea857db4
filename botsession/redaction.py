"""The one place where secrets are masked before anything is shown.

Everything botsession prints, raises or logs about a proxy goes through here: URLs lose the
password in their userinfo, Telegram proxy links their ``pass=`` (and MTProto links their
``secret=``), values at a ``password`` key are replaced, and known secrets are scrubbed from
finished messages as a last line of defence.
"""

from __future__ import annotations

import re
import string
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

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


def redact_url(text: str, *, value: bool = False) -> str:
    """Return ``text`` with the password of every ``scheme://user:password@`` replaced.

    A password may hold spaces, tabs or line breaks, and an unencoded "@", "/" or "#", so no
    character ends it but the last "@" of the text: everything from the first password to the
    last "@" is masked, later passwords included (over-masking is safe, under-masking is not).
    In free text a user name has no whitespace (so prose such as "http:// or https:" is left
    alone); with ``value=True`` the text is one raw value, read as the URL parser reads it,
    whose user name may hold anything but "@", "/", "[" and "]".
    Linear time: a regular expression for this backtracks quadratically on hostile input.

    The ``pass=`` and ``secret=`` of Telegram proxy links are masked as well.
    """
    span = _password_span(text, value=value)
    if span is not None:
        text = text[: span[0]] + MASK + text[span[1] :]
    if "=" not in text:
        return text
    pattern = _LINK_SECRET_OF_VALUE if value else _LINK_SECRET_OF_TEXT
    return pattern.sub(lambda match: match[1] + (MASK if match[2] else ""), text)


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
    """Replace every known secret (long enough to be recognisable) in ``text``."""
    return _scrub_longest_first(text, sorted(secrets, key=len, reverse=True))


def _scrub_longest_first(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if len(secret) >= _MIN_SCRUB_LENGTH and secret in text:
            text = text.replace(secret, MASK)
    return redact_url(text)


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
    present = sorted((secret for secret in wanted if secret in joined), key=len, reverse=True)
    return [_scrub_longest_first(text, present) for text in texts]


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
