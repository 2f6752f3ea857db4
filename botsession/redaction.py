"""The one place where secrets are masked before anything is shown.

Everything botsession prints, raises or logs about a proxy goes through here: URLs lose the
password in their userinfo, values at a ``password`` key are replaced, and known secrets are
scrubbed from finished messages as a last line of defence.
"""

from __future__ import annotations

import re
import string
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote

MASK = "***"

_WHITESPACE = re.compile(r"(\s+)")
_SCHEME_CHARS = frozenset(string.ascii_letters + string.digits + "+.-")
_NOT_IN_USER = frozenset("@/[]")

# Secrets shorter than this are masked structurally only: scrubbing "pw" from free text would
# garble unrelated words without protecting anything.
_MIN_SCRUB_LENGTH = 4

_MAX_SHOWN = 120


def redact_url(text: str) -> str:
    """Return ``text`` with the password of every ``scheme://user:password@`` replaced.

    In each whitespace-free run the password reaches to the last "@", so an unencoded "@",
    "/" or "#" inside it is masked too (over-masking is safe, under-masking is not). Linear
    time: a regular expression for this backtracks quadratically on hostile input.
    """
    parts = _WHITESPACE.split(text)
    for index, part in enumerate(parts):
        span = _password_span(part)
        if span is not None:
            parts[index] = part[: span[0]] + MASK + part[span[1] :]
    return "".join(parts)


def _password_span(token: str) -> tuple[int, int] | None:
    """Where the password of the first ``scheme://user:password@`` in ``token`` is."""
    at = token.rfind("@")
    separator = token.find("://", 0, at) if at > 0 else -1
    while separator != -1:
        start = separator
        while start > 0 and token[start - 1] in _SCHEME_CHARS:
            start -= 1
        while start < separator and not token[start].isalpha():
            start += 1
        user_start = separator + 3
        # Each search stops at the next "://" at the latest (it holds a ":"): linear overall.
        colon = token.find(":", user_start, at)
        if start < separator and colon != -1 and _NOT_IN_USER.isdisjoint(token[user_start:colon]):
            return colon + 1, at
        separator = token.find("://", user_start, at)
    return None


def has_url_password(text: str) -> bool:
    """Whether ``text`` holds a ``scheme://user:password@`` with a password."""
    return any(_url_passwords(text))


def _url_passwords(text: str) -> Iterator[str]:
    for part in _WHITESPACE.split(text):
        span = _password_span(part)
        if span is not None:
            yield part[span[0] : span[1]]


def is_secret_key(key: object) -> bool:
    """Whether a mapping key names a secret value."""
    return isinstance(key, str) and key.lower() == "password"


def describe_value(path: tuple[str | int, ...], value: Any) -> str:
    """A short, redacted rendering of a user-supplied value for an error message."""
    if path and is_secret_key(path[-1]):
        return MASK
    if isinstance(value, str):
        shown = redact_url(value)
    elif isinstance(value, Mapping):
        shown = "a mapping with keys " + ", ".join(sorted(map(str, value)))
    elif isinstance(value, (list, tuple)):
        shown = f"a list of {len(value)} items"
    else:
        shown = redact_url(repr(value))
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
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _MIN_SCRUB_LENGTH:
            text = text.replace(secret, MASK)
    return redact_url(text)


def _basic_auth_type() -> type[Any] | None:
    # aiohttp is only loaded if the caller already imported it: a BasicAuth cannot exist otherwise,
    # and importing aiohttp here would slow down ``load_config`` for everyone.
    aiohttp = sys.modules.get("aiohttp")
    return getattr(aiohttp, "BasicAuth", None)
