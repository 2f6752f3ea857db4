"""Parsing of proxy URLs: ``scheme://[user[:password]@]host:port``, and Telegram proxy links.

Hand-written rather than ``urllib.parse`` because the standard parser turns a password that
contains an unencoded ``#``, ``?`` or ``/`` into a baffling "invalid port" error; here such a
password gets an error that says what to do. Messages never contain the password.

Host names are checked as DNS names (labels of 1 to 63 octets, 253 in all) and international
names are encoded as IDNA 2008 with UTS 46 mapping (``straße.de`` → ``xn--strae-oqa.de``), as
yarl does; the same rules apply to the host of ``api.base``.

A Telegram SOCKS5 link (``https://t.me/socks?server=HOST&port=PORT&user=U&pass=P`` or
``tg://socks?…``) is read as the SOCKS5 hop it describes, with remote DNS. An MTProto link
(``t.me/proxy``, ``tg://proxy``) is refused: an MTProto proxy only carries Telegram's app
protocol, not the Bot API's HTTPS. Neither the link's ``pass`` nor an MTProto ``secret`` is ever
part of a message.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import unquote

import idna

from .redaction import token_secrets

SCHEMES = ("http", "https", "socks4", "socks4a", "socks5")
"""Protocols a hop may use; ``socks5h`` is accepted as socks5 with remote DNS. ``https`` is
HTTP CONNECT inside TLS to the proxy."""

SUPPORTED_TEXT = "http, https, socks4, socks4a, socks5 (or socks5h)"
URL_SHAPE = "scheme://[user[:password]@]host:port"
TELEGRAM_LINK_SHAPE = "https://t.me/socks?server=HOST&port=PORT (with user and pass if needed)"

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_LABEL_CHARS = re.compile(r"[a-z0-9_-]+")
_NOT_IN_URL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
"""Whitespace (as ``str.isspace``) and control characters: never valid unencoded in a URL."""
MAX_NAME = 253
MAX_LABEL = 63
_HINTS = {
    "socks": "say which SOCKS version: socks4, socks4a or socks5",
    "socks5a": "socks5 resolves names on the proxy already (remote DNS is its default)",
}


class ProxyUrlError(ValueError):
    """A proxy URL is malformed; the message is safe to show (no password)."""


@dataclass(frozen=True)
class ProxyUrl:
    """The pieces of a proxy URL, percent-decoded."""

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)
    remote_dns: bool | None
    """True for socks5h; None where the scheme leaves it to the ``rdns`` setting."""
    telegram_link: bool = False
    """Written as a Telegram SOCKS5 link (``t.me/socks``), which means remote DNS."""


def parse_proxy_url(text: str) -> ProxyUrl:
    """Split a proxy URL into its parts or raise ``ProxyUrlError`` saying what is wrong."""
    text = text.strip()
    if not text:
        raise ProxyUrlError(f"the proxy URL is empty; expected {URL_SHAPE}")
    if has_space_or_control(text):
        # Not located or echoed: the character may well be inside a password.
        raise ProxyUrlError(
            "the proxy URL contains a space, tab, line break or other control character; "
            "percent-encode it (%20 for a space) or use the mapping form "
            "(url plus a separate password or password_file)"
        )
    link = _TELEGRAM_LINK.match(text)
    if link is not None:
        return _telegram_link(link["path"], link["query"])
    match = _SCHEME.match(text)
    if match is None:
        raise ProxyUrlError(
            f"no protocol; expected {URL_SHAPE} with scheme one of {SUPPORTED_TEXT}"
        )
    scheme, remote_dns = _scheme(match.group(1))
    rest = text[match.end() :]
    userinfo, at, hostport = rest.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    host, port = _host_port(hostport)
    return ProxyUrl(scheme, host, port, username, password, remote_dns)


# --- Telegram proxy links --------------------------------------------------------------

_TELEGRAM_LINK = re.compile(
    r"(?:tg://|(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me|telegram\.dog)(?=[/?#]|$)/?)"
    r"(?P<path>[^?]*)(?:\?(?P<query>.*))?",
    re.IGNORECASE | re.DOTALL,
)
_LINK_KEYS = ("server", "port", "user", "pass")
MTPROTO_REFUSAL = (
    "this is an MTProto proxy link (t.me/proxy or tg://proxy): an MTProto proxy carries only "
    "Telegram's own app protocol, not the HTTPS requests of the Bot API, so a bot cannot use "
    "it; use a SOCKS5 proxy (a t.me/socks link works as it is), an HTTP or HTTPS proxy, or run "
    "the bot where api.telegram.org is reachable (Telethon and kurigram speak that protocol, "
    "but botsession does not route them through an MTProto proxy: give the link to the "
    "client's own proxy setting instead)"
)


def _telegram_link(path: str, query: str | None) -> ProxyUrl:
    """A ``t.me/socks`` or ``tg://socks`` link as the SOCKS5 hop it describes."""
    kind = path.strip("/").lower()
    if kind == "proxy":
        raise ProxyUrlError(MTPROTO_REFUSAL)  # before reading it: the secret is never touched
    if kind != "socks":
        raise ProxyUrlError(
            f"this Telegram link is not a proxy link; a SOCKS5 proxy link is {TELEGRAM_LINK_SHAPE}"
        )
    fields = _link_fields(query or "")
    server = fields.get("server")
    if not server:
        raise ProxyUrlError(
            f"the Telegram link has no server (the proxy's host); expected {TELEGRAM_LINK_SHAPE}"
        )
    if server.startswith("[") and server.endswith("]"):
        server = server[1:-1]
    try:
        host = normalise_host(server)
    except ValueError as error:
        raise ProxyUrlError(f"the server of the Telegram link: {error}") from None
    if "port" not in fields:
        raise ProxyUrlError(f"the Telegram link has no port; expected {TELEGRAM_LINK_SHAPE}")
    try:
        port = _port(fields["port"])
    except ProxyUrlError as error:
        raise ProxyUrlError(f"{error} (the port of the Telegram link)") from None
    username = fields.get("user") or None
    password = fields.get("pass") or None
    if password is not None and username is None:
        raise ProxyUrlError("the Telegram link has a pass but no user")
    return ProxyUrl("socks5", host, port, username, password, True, telegram_link=True)


def _link_fields(query: str) -> dict[str, str]:
    """The link's parameters, percent-decoded; no value (nor an unknown name) is ever shown."""
    if "#" in query:
        raise ProxyUrlError("the Telegram link contains an unencoded '#'; percent-encode it as %23")
    fields: dict[str, str] = {}
    for part in query.split("&"):
        if not part:
            continue
        key, equals, raw = part.partition("=")
        key = key.lower()
        if not equals or key not in _LINK_KEYS:
            # Not echoed: with an unencoded '&' in a password, the "name" is part of it.
            raise ProxyUrlError(
                "the Telegram link has a parameter other than server, port, user and pass "
                "(a misspelt name, or an '&' in a value that is not percent-encoded as %26)"
            )
        if key in fields:
            raise ProxyUrlError(f"the Telegram link gives {key} twice")
        try:
            fields[key] = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise ProxyUrlError(
                f"the {key} of the Telegram link is not valid percent-encoded UTF-8"
            ) from None
    return fields


# --- URLs --------------------------------------------------------------------------------


def _scheme(raw: str) -> tuple[str, bool | None]:
    scheme = raw.lower()
    if scheme == "socks5h":
        return "socks5", True
    if scheme in SCHEMES:
        return scheme, None
    hint = _HINTS.get(scheme)
    suffix = f" ({hint})" if hint else ""
    raise ProxyUrlError(
        f"unsupported protocol {scheme!r}{suffix}; expected one of {SUPPORTED_TEXT}"
    )


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if any(char in userinfo for char in "/?#"):
        raise ProxyUrlError(
            "the user name or password contains an unencoded '/', '?' or '#'; "
            "percent-encode it (%2F, %3F, %23) or use the mapping form "
            "(url plus a separate password or password_file)"
        )
    raw_user, colon, raw_password = userinfo.partition(":")
    try:
        username = unquote(raw_user, errors="strict")
        password = unquote(raw_password, errors="strict") if colon else None
    except UnicodeDecodeError:
        raise ProxyUrlError("the credentials are not valid percent-encoded UTF-8") from None
    if not username:
        if password:
            raise ProxyUrlError("the URL has a password but no user name")
        return None, None
    return username, password


def _host_port(hostport: str) -> tuple[str, int]:
    if hostport.endswith("/"):
        hostport = hostport[:-1]
    if any(char in hostport for char in "/?#"):
        raise ProxyUrlError(f"a proxy URL has no path, query or fragment; expected {URL_SHAPE}")
    if hostport.startswith("["):
        inside, bracket, after = hostport[1:].partition("]")
        if not bracket:
            raise ProxyUrlError("the IPv6 address has no closing ']'")
        host = _ipv6(inside)
        if not after.startswith(":"):
            raise ProxyUrlError(f"the port is missing; expected {URL_SHAPE}")
        raw_port = after[1:]
    else:
        host, colon, raw_port = hostport.rpartition(":")
        if not colon:
            raise ProxyUrlError(f"the port is missing; expected {URL_SHAPE}")
        if ":" in host:
            raise ProxyUrlError("an IPv6 address must be in brackets, as in socks5://[::1]:1080")
        host = _hostname(host)
    return host, _port(raw_port)


def _ipv6(text: str) -> str:
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        raise ProxyUrlError(f"{_quoted(text)} is not an IPv6 address") from None


def _quoted(text: str, longest: int = 60) -> str:
    """``text`` quoted for a message, cut short when long (input may be megabytes)."""
    return (
        repr(text) if len(text) <= longest else repr(text[:longest]) + f"… ({len(text)} characters)"
    )


def _hostname(text: str) -> str:
    if not text:
        raise ProxyUrlError(f"the host is missing; expected {URL_SHAPE}")
    try:
        return normalise_host_name(text)
    except ValueError as error:
        raise ProxyUrlError(str(error)) from None


def has_space_or_control(text: str) -> bool:
    """Whether ``text`` holds whitespace or a control character anywhere."""
    return _NOT_IN_URL.search(text) is not None


_NAME_HAZARDS = {
    "Cc": "the control character",  # C0, DEL and C1
    "Zl": "the line separator",
    "Zp": "the paragraph separator",
    "Cs": "the lone surrogate",  # bytes that were not UTF-8, smuggled through os.environ
}
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


@dataclass(frozen=True)
class Unprintable:
    """A character that a name must not hold, found at ``position`` (counted from 1)."""

    char: str
    position: int
    kind: str

    def __str__(self) -> str:
        # Escaped: the raw character would act on the terminal or log that shows the message.
        return f"{self.kind} {self.char!r} (U+{ord(self.char):04X}) at character {self.position}"


def unprintable_character(text: str) -> Unprintable | None:
    """The first character of ``text`` that would act on a terminal or log instead of being
    shown: a control character (C0, DEL, C1), a line or paragraph separator, a bidirectional
    formatting character, or a lone surrogate (not text at all); None when there is none."""
    for position, char in enumerate(text, start=1):
        kind = _NAME_HAZARDS.get(unicodedata.category(char))
        if kind is None and char in _BIDI_CONTROLS:
            kind = "the bidirectional formatting character"
        if kind is not None:
            return Unprintable(char, position, kind)
    return None


def is_ip_address(host: str) -> bool:
    """Whether a canonical host is an IP literal (which nobody needs to resolve)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def normalise_host(text: str) -> str:
    """A canonical host: an IPv6 address (unbracketed), an IPv4 address or an ASCII DNS name.

    Raises ``ValueError`` with a message that says what is wrong with the name.
    """
    if ":" in text:
        try:
            return str(ipaddress.IPv6Address(text))
        except ValueError:
            raise ValueError(f"{_quoted(text)} is not an IPv6 address") from None
    return normalise_host_name(text)


def normalise_host_name(text: str) -> str:
    """An IPv4 address or a DNS name in lower-case ASCII (IDNA 2008 for international names)."""
    if len(text) > 4 * MAX_NAME:  # not worth encoding; a mapping can only shorten it so much
        raise ValueError(f"the host name is {len(text)} characters long; DNS allows {MAX_NAME}")
    if text.isascii():
        labels = text.lower().split(".")
    else:
        try:
            mapped = idna.uts46_remap(text, std3_rules=False, transitional=False)
        except (UnicodeError, ValueError) as error:
            raise ValueError(f"{text!r} is not a valid host name: {error}") from None
        labels = mapped.split(".")
    ascii_labels = [_ascii_label(text, label) for label in labels]
    name = ".".join(ascii_labels)
    if all(label.isdigit() for label in ascii_labels):
        return _ipv4(name, text)
    if len(name) > MAX_NAME:
        shown = "" if text.isascii() else " in its ASCII (IDNA) form"
        raise ValueError(
            f"the host name is {len(name)} characters long{shown}; DNS allows {MAX_NAME}"
        )
    return name


def _ascii_label(name: str, label: str) -> str:
    if not label:
        raise ValueError(
            f"{name!r} is not a valid host name: it has an empty label "
            "(a dot at the start or the end, or two dots in a row)"
        )
    if not label.isascii():
        try:
            label = idna.alabel(label).decode("ascii")
        except (UnicodeError, ValueError) as error:
            raise ValueError(f"{name!r} is not a valid host name: {error} (IDNA 2008)") from None
    else:
        label = label.lower()
        if not _LABEL_CHARS.fullmatch(label):
            bad = next(char for char in label if not _LABEL_CHARS.fullmatch(char))
            raise ValueError(
                f"{name!r} is not a valid host name: {bad!r} is not allowed "
                "(letters, digits, '-', '_' and '.' only)"
            )
        if label.startswith("-") or label.endswith("-"):
            raise ValueError(
                f"{name!r} is not a valid host name: the label {label!r} starts or ends with '-'"
            )
        if label.startswith("xn--"):
            try:
                idna.ulabel(label)
            except (UnicodeError, ValueError):
                raise ValueError(
                    f"{name!r} is not a valid host name: the label {label!r} is not a valid "
                    "IDNA (punycode) label"
                ) from None
    if len(label) > MAX_LABEL:
        raise ValueError(
            f"the host name has a label of {len(label)} characters "
            f"({label[:12]}…); DNS allows {MAX_LABEL} per label"
        )
    return label


def _ipv4(address: str, text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(address))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a valid IPv4 address "
            "(four numbers from 0 to 255, without leading zeros)"
        ) from None


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        # Not echoed: in "socks5://user:secret" (no "@host") the "port" is really a password.
        raise ProxyUrlError("the port must be a number from 1 to 65535")
    if len(text.lstrip("0")) > 5:  # int() of thousands of digits takes time; Python refuses it
        digits = len(text.lstrip("0"))
        raise ProxyUrlError(f"the port must be a number from 1 to 65535, found {digits} digits")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ProxyUrlError(f"the port must be a number from 1 to 65535, found {port}")
    return port


def normalise_http_base(text: str) -> str:
    """``api.base`` as a canonical URL: ``http[s]://host[:port][/path]``, host as for proxies.

    Raises ``ValueError`` saying what is wrong; the URL itself is never echoed (it may hold
    credentials by mistake).
    """
    text = text.strip()
    expected = "expected an http:// or https:// base URL"
    if has_space_or_control(text):
        raise ValueError(
            "the base URL contains a space, tab, line break or other control character"
        )
    match = _SCHEME.match(text)
    if match is None or match.group(1).lower() not in ("http", "https"):
        raise ValueError(f"{expected}, such as https://api.telegram.org")
    scheme = match.group(1).lower()
    rest = text[match.end() :]
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        raise ValueError(f"{expected} without credentials (no user name or password)")
    if any(char in rest for char in "?#"):
        raise ValueError("the base URL cannot have a query or fragment")
    if authority.startswith("["):
        inside, bracket, after = authority[1:].partition("]")
        if not bracket:
            raise ValueError("the IPv6 address in the base URL has no closing ']'")
        host = f"[{_ipv6(inside)}]"
        if after and not after.startswith(":"):
            raise ValueError(f"{expected}; a ':' and the port must follow the IPv6 address")
        raw_port = after[1:] if after else None
    else:
        name, colon, port_text = authority.rpartition(":")
        if not colon:
            name, port_text = authority, ""
        elif ":" in name:
            raise ValueError("an IPv6 address must be in brackets, as in http://[::1]:8081")
        raw_port = port_text if colon else None
        if not name:
            raise ValueError(
                f"the base URL has no host; {expected}, such as https://api.telegram.org"
            )
        host = normalise_host_name(name)
    port = ""
    if raw_port is not None:
        port = f":{_port(raw_port)}"
    return f"{scheme}://{host}{port}{_base_path(path) if slash else ''}"


def _base_path(path: str) -> str:
    """The path prefix of ``api.base``, without a trailing slash; never a bot token."""
    if token_secrets("/" + path):
        raise ValueError(
            "the base URL holds a bot token (…/bot<id>:***): give the server's base URL alone, "
            "such as https://api.telegram.org; the token goes to the Bot, and the session adds "
            "/bot<token>/<method> to every request itself"
        )
    return ("/" + path).rstrip("/")
