"""``trust_env``: the standard proxy variables, read as curl reads them.

For an https Bot API server ``https_proxy``/``HTTPS_PROXY`` is used, for http ``http_proxy``/
``HTTP_PROXY``, else ``all_proxy``/``ALL_PROXY`` (the lower-case name wins). ``no_proxy``/
``NO_PROXY`` lists hosts (``example.com`` also covers its subdomains, ``*`` covers all) and
networks (``10.0.0.0/8``) reached directly. A value without a scheme is an http proxy.
Host names are compared in their ASCII (IDNA) form, so ``straße.de`` and ``xn--strae-oqa.de``
name the same host.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from ..proxy_url import normalise_host


def proxy_from_environment(environ: Mapping[str, str], api_base: str) -> tuple[str, str] | None:
    """``(proxy URL, variable name)`` for reaching ``api_base``, or None to connect directly."""
    try:
        target = urlsplit(api_base.strip())
        host = _ascii_host(target.hostname or "")
    except ValueError:  # not a URL at all: reported when api.base is validated
        return None
    if _bypassed(host, _first(environ, "no_proxy")):
        return None
    specific = "https_proxy" if target.scheme == "https" else "http_proxy"
    for name in (specific, specific.upper(), "all_proxy", "ALL_PROXY"):
        value = environ.get(name, "").strip()
        if value:
            return (value if "://" in value else f"http://{value}"), name
    return None


def _first(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name) or environ.get(name.upper()) or ""


def _bypassed(host: str, no_proxy: str) -> bool:
    for entry in filter(None, re.split(r"[,\s]+", no_proxy.lower())):
        if entry == "*":
            return True
        if "/" in entry and _in_network(host, entry):
            return True
        name = entry.lstrip(".")
        if name.startswith("["):
            name = name[1:].partition("]")[0]  # [::1] or [::1]:8081
        elif name.count(":") == 1:
            name = name.rsplit(":", 1)[0]
        name = _ascii_host(name)
        if host == name or host.endswith(f".{name}"):
            return True
    return False


def _ascii_host(name: str) -> str:
    """``name`` as ``normalise_host`` spells it, or lower-cased when it is not a valid host."""
    try:
        return normalise_host(name)
    except ValueError:
        return name.lower()


def _in_network(host: str, entry: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
