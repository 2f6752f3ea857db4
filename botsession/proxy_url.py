"""Parsing of proxy URLs: ``scheme://[user[:password]@]host:port``.

Hand-written rather than ``urllib.parse`` because the standard parser turns a password that
contains an unencoded ``#``, ``?`` or ``/`` into a baffling "invalid port" error; here such a
password gets an error that says what to do. Messages never contain the password.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote

SCHEMES = ("http", "socks4", "socks4a", "socks5")
"""Protocols a hop may use; ``socks5h`` is accepted as socks5 with remote DNS."""

SUPPORTED_TEXT = "http, socks4, socks4a, socks5 (or socks5h)"
URL_SHAPE = "scheme://[user[:password]@]host:port"

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_HINTS = {
    "https": "TLS to the proxy itself is not supported; an HTTP CONNECT proxy is http://",
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
    password: str | None
    remote_dns: bool | None
    """True for socks5h; None where the scheme leaves it to the ``rdns`` setting."""


def parse_proxy_url(text: str) -> ProxyUrl:
    """Split a proxy URL into its parts or raise ``ProxyUrlError`` saying what is wrong."""
    text = text.strip()
    if not text:
        raise ProxyUrlError(f"the proxy URL is empty; expected {URL_SHAPE}")
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
        raise ProxyUrlError(f"{text!r} is not an IPv6 address") from None


def _hostname(text: str) -> str:
    if not text:
        raise ProxyUrlError(f"the host is missing; expected {URL_SHAPE}")
    if len(text) > 253:
        raise ProxyUrlError(f"the host name is {len(text)} characters long; DNS allows 253")
    try:
        ascii_name = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError:
        raise ProxyUrlError(f"{text!r} is not a valid host name") from None
    if not _HOSTNAME.fullmatch(ascii_name):
        raise ProxyUrlError(f"{text!r} is not a valid host name")
    return ascii_name.lower()


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        # Not echoed: in "socks5://user:secret" (no "@host") the "port" is really a password.
        raise ProxyUrlError("the port must be a number from 1 to 65535")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ProxyUrlError(f"the port must be a number from 1 to 65535, found {port}")
    return port
