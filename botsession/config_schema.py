"""The configuration schema: every accepted input form validated into one immutable model.

A proxy route may be written as a URL, a mapping, a list of either (a chain), or in Python
also as ``(url, aiohttp.BasicAuth)`` or any iterable of those; all of them become a
``ProxyRoute``, an ordered tuple of canonical ``ProxyHop`` objects. Loading from files and the
environment lives in ``botsession.sources``; this module only says what is valid.

Every public model hides the input in pydantic's error text (``hide_input_in_errors``) and
raises its errors with the input already masked (``_masking_errors``): neither a
``ValidationError`` of the model itself nor one of an application's model that holds it as a
field shows a password, in its text, ``.errors()`` or ``.json()``.
"""

from __future__ import annotations

import base64
import itertools
import ssl
import sys
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, TypeVar
from urllib.parse import quote, urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FilePath,
    GetJsonSchemaHandler,
    ModelWrapValidatorHandler,
    RootModel,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, PydanticKnownError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from .errors import BotSessionWarning, ConfigError, outside_stacklevel, route_name
from .proxy_url import (
    SUPPORTED_TEXT,
    TELEGRAM_LINK_SHAPE,
    URL_SHAPE,
    ProxyUrl,
    ProxyUrlError,
    is_ip_address,
    normalise_host,
    normalise_http_base,
    parse_proxy_url,
    unprintable_character,
)
from .redaction import MASK, Secrets, redact_url
from .sources import (
    DotEnvSource,
    EnvironmentSource,
    Reading,
    YamlFileSource,
    default_api_base,
    merge_sources,
    redacted_error,
    sources_to_read,
)
from .sources.environment import NESTED_DELIMITER
from .sources.files import UnreadableFile, read_regular_file
from .sources.problems import masked_error
from .sources.providers import validating_given_data

Scheme = Literal["http", "https", "socks4", "socks4a", "socks5"]

DEFAULT_API_BASE = "https://api.telegram.org"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_HEDGE_AFTER = 2.0
"""With fallback routes, the next route starts connecting as well after this many seconds (or
half of ``connect_timeout`` when that is shorter): more than a healthy route through distant
proxies needs (TCP, each hop's handshake and TLS: some round trips of at most ~0.3 s each), so a
working primary rarely costs a second connection, and a fifth of the default connect timeout."""
DEFAULT_RETRY_PRIMARY_AFTER = 6.0
"""The longest a route that works again stays unused (the longest interval between checks): a
proxy that flaps is used again within seconds of working, and one that stays down costs about
one connection every 5.4 s (checks come 4.8-6 s apart: fewer than 12 a minute)."""
MAX_HOPS = 16
"""Longest chain accepted: real chains have 2-4 hops; thousands would only burn time."""
MAX_FALLBACKS = 16
MAX_PASSWORD_FILE_BYTES = 64 * 1024
"""Bound on a password file: a password is dozens of bytes, not a whole disk or /dev/zero."""


Loc = tuple[str | int, ...]


def _reject(loc: Loc, message: str, value: Any) -> NoReturn:
    """Raise one problem, located relative to the model being validated."""
    _reject_all([(loc, message, value)])
    raise AssertionError("unreachable")  # pragma: no cover


def _reject_all(problems: Iterable[tuple[Loc, str, Any]]) -> None:
    """Raise all ``(loc, message, input)`` problems at once as one pydantic ValidationError."""
    details = [
        InitErrorDetails(
            type=PydanticCustomError("botsession", message),
            loc=loc,
            input=value,
        )
        for loc, message, value in problems
    ]
    if details:
        raise ValidationError.from_exception_data("botsession", details, hide_input=True)


T = TypeVar("T")


def _masking_errors(value: Any, validate: Callable[[], T]) -> T:
    """``validate()``, raising its errors with the secrets of ``value`` masked.

    A model's ``hide_input_in_errors`` hides input only from the text of its own errors:
    pydantic copies each error, raw input included, into the error of a model that encloses this
    one (an application's settings), which shows it unless that model hides input too, and
    ``.errors()`` and ``.json()`` hold it either way. An error raised with its input already
    masked is copied masked (pydantic-core turns a ``ValidationError`` raised by a validator
    into its line errors, inputs as they are).
    """
    try:
        return validate()
    except ValidationError as error:
        failure = error
    except PydanticCustomError as error:  # raised by the validator itself, about all of value
        detail = InitErrorDetails(type=error, loc=(), input=value)
        failure = ValidationError.from_exception_data("botsession", [detail])
    raise masked_error(failure, value)


def _refuse_bool(error_type: Literal["int_type", "float_type"]) -> BeforeValidator:
    """A number setting takes numbers (or their text), never ``True``/``False`` (pydantic's lax
    mode would read them as 1 and 0)."""

    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise PydanticKnownError(error_type)
        return value

    return BeforeValidator(check)


Integer = Annotated[int, _refuse_bool("int_type")]
Number = Annotated[float, _refuse_bool("float_type")]


class HopSpec(BaseModel):
    """One proxy hop as written in a mapping: a URL plus optional separate credentials."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: str = Field(
        description=f"{URL_SHAPE}; scheme one of {SUPPORTED_TEXT}; or a Telegram SOCKS5 link "
        f"{TELEGRAM_LINK_SHAPE} (or tg://socks?…)",
        examples=[
            "socks5://127.0.0.1:1080",
            "http://user:pass@proxy.example:3128",
            "https://user:pass@proxy.example:443",
            "https://t.me/socks?server=proxy.example&port=1080&user=bot&pass=secret",
        ],
    )
    username: str | None = Field(None, description="Wins over a user name in the URL.")
    password: SecretStr | None = Field(None, description="Wins over a password in the URL.")
    password_file: Path | None = Field(
        None, description="File holding the password; a trailing newline is ignored."
    )
    rdns: bool | None = Field(
        None,
        description="Let the proxy resolve the target name (socks5 only; default true). "
        "For SOCKS4 choose socks4 (client resolves) or socks4a (proxy resolves).",
    )
    ca_file: FilePath | None = Field(
        None,
        description="https proxies only: PEM file of the CA certificates to trust for this "
        "proxy's certificate instead of certifi's bundle.",
    )
    verify: bool | None = Field(
        None,
        description="https proxies only: check the proxy's certificate and host name before "
        "anything else is sent (default true; false is insecure and warns).",
    )

    @field_validator("url")
    @classmethod
    def _parseable(cls, url: str) -> str:
        try:
            parse_proxy_url(url)
        except ProxyUrlError as error:
            raise PydanticCustomError("proxy_url", str(error)) from None
        return url

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # The URL may hold a password (userinfo, or a Telegram link's pass=).
        for name, value in super().__repr_args__():
            yield name, redact_url(value, value=True) if name == "url" else value


class ProxyHop(BaseModel):
    """One canonical proxy hop. ``repr``/``str`` show the password as ``***``."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    scheme: Scheme
    host: str
    """An IP address (IPv6 without brackets) or a lower-case ASCII name (IDNA-encoded)."""
    port: Integer = Field(ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    rdns: bool
    """Whether the proxy resolves the target host name (socks4a, socks5 by default)."""
    ca_file: Path | None = None
    """https: the CA certificates to trust for the proxy's certificate (None: certifi's)."""
    verify: bool = True
    """https: whether the proxy's certificate and host name are checked."""

    @model_validator(mode="wrap")
    @classmethod
    def _from_any_form(cls, value: Any, handler: ModelWrapValidatorHandler[ProxyHop]) -> ProxyHop:
        return _masking_errors(value, lambda: _hop_from_any_form(value, handler))

    @field_validator("host")
    @classmethod
    def _valid_host(cls, host: str) -> str:
        try:
            return normalise_host(host)
        except ValueError as error:
            raise PydanticCustomError("proxy_url", str(error)) from None

    @model_validator(mode="after")
    def _sendable_credentials(self) -> ProxyHop:
        # The canonical mapping form skips _canonical: its credentials get the same checks.
        user_loc, pass_loc = ("username",), ("password",)
        _reject_all(
            _credential_problems(self.scheme, self.username, self.secret(), user_loc, pass_loc)
        )
        return self

    @model_validator(mode="after")
    def _tls_settings_need_tls(self) -> ProxyHop:
        if self.scheme != "https" and (self.ca_file is not None or not self.verify):
            field = "ca_file" if self.ca_file is not None else "verify"
            _reject((field,), _TLS_ONLY.format(field), None)
        return self

    @property
    def tls(self) -> bool:
        """Whether botsession speaks TLS to this proxy (an https hop)."""
        return self.scheme == "https"

    def tls_note(self) -> str:
        """``TLS``, ``TLS, ca_file /etc/proxy-ca.pem`` or ``TLS not verified``; empty if not TLS."""
        if not self.tls:
            return ""
        if not self.verify:
            return "TLS not verified"
        return "TLS" if self.ca_file is None else f"TLS, ca_file {self.ca_file}"

    @property
    def url(self) -> str:
        """The hop as a URL with the password masked."""
        return self.label()

    def label(self, *, credentials: bool = True) -> str:
        """``socks5://user:***@host:port``, or without the user part when not wanted."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        userinfo = ""
        if credentials and self.username is not None:
            userinfo = self.username + (f":{MASK}" if self.password is not None else "") + "@"
        return f"{self.scheme}://{userinfo}{host}:{self.port}"

    @property
    def address(self) -> str:
        """``host:port`` (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def secret(self) -> str | None:
        """The plain password, for the connector only."""
        return None if self.password is None else self.password.get_secret_value()

    def secret_forms(self) -> Secrets:
        """The password as it may show up in a proxy's reply or an error: as written,
        percent-encoded, and (http, https) inside the Basic credentials sent to the proxy."""
        password = self.secret()
        if password is None:
            return Secrets(())
        forms = {password, quote(password, safe="")}
        if self.scheme in ("http", "https"):
            basic = f"{self.username or ''}:{password}".encode("utf-8", "surrogatepass")
            forms.add(base64.b64encode(basic).decode("ascii"))
        return Secrets(forms)

    def __repr__(self) -> str:
        dns = "" if self.rdns == (self.scheme != "socks4") else f", rdns={self.rdns}"
        ca_file = "" if self.ca_file is None else f", ca_file={str(self.ca_file)!r}"
        verify = "" if self.verify else ", verify=False"
        return f"ProxyHop({self.label()!r}{dns}{ca_file}{verify})"

    __str__ = label


def _hop_from_any_form(value: Any, handler: ModelWrapValidatorHandler[ProxyHop]) -> ProxyHop:
    if isinstance(value, ProxyHop):
        return value
    if isinstance(value, str):
        return handler(_canonical(HopSpec.model_validate({"url": value})))
    if _is_url_with_basic_auth(value):
        url, auth = value
        spec = {"url": url, "username": auth.login, "password": auth.password or None}
        return handler(_canonical(HopSpec.model_validate(spec)))
    if isinstance(value, Mapping) and ("url" in value or "scheme" not in value):
        return handler(_canonical(HopSpec.model_validate(value)))
    if not isinstance(value, Mapping):
        raise PydanticCustomError("proxy_form", "expected a proxy URL or a mapping with url")
    return handler(value)


def _is_url_with_basic_auth(value: Any) -> bool:
    # aiohttp is not imported here: a BasicAuth can only exist if the caller already imported it.
    aiohttp = sys.modules.get("aiohttp")
    return (
        aiohttp is not None
        and isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], aiohttp.BasicAuth)
    )


def _canonical(spec: HopSpec) -> dict[str, Any]:
    """Merge a hop's URL and separate fields into canonical hop fields (fields win)."""
    url = parse_proxy_url(spec.url)
    username = spec.username if spec.username is not None else url.username
    password = _password(spec, url)
    rdns = _rdns(spec, url)
    _check_credentials(url.scheme, username, password, spec)
    _check_tls(url, spec)
    return {
        "scheme": url.scheme,
        "host": url.host,
        "port": url.port,
        "username": username,
        "password": password,
        "rdns": rdns,
        "ca_file": spec.ca_file,
        "verify": spec.verify is not False,
    }


_TLS_ONLY = "{} applies to https:// proxies only (TLS to the proxy)"


def _check_tls(url: ProxyUrl, spec: HopSpec) -> None:
    """``ca_file`` and ``verify`` belong to https hops, and ``ca_file`` must hold CAs."""
    problems: list[tuple[Loc, str, Any]] = []
    if url.scheme != "https":
        for name, value in (("ca_file", spec.ca_file), ("verify", spec.verify)):
            if value is not None:
                problems.append(((name,), _TLS_ONLY.format(name), value))
        _reject_all(problems)
        return
    if spec.ca_file is None:
        return
    if spec.verify is False:
        _reject(("ca_file",), "ca_file has no effect when verify is false", str(spec.ca_file))
    _check_ca_file(spec.ca_file)


def _check_ca_file(path: Path) -> None:
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError) as error:
        reason = getattr(error, "reason", None) or error.strerror or type(error).__name__
        _reject(("ca_file",), f"not a PEM file of CA certificates ({reason})", str(path))


def _password(spec: HopSpec, url: ProxyUrl) -> str | None:
    if spec.password is not None and spec.password_file is not None:
        _reject(("password_file",), "give either password or password_file, not both", MASK)
    if spec.password_file is not None:
        return _read_password_file(spec.password_file)
    if spec.password is not None:
        return spec.password.get_secret_value()
    return url.password


def _read_password_file(path: Path) -> str:
    where = ("password_file",)
    try:
        contents = read_regular_file(path, MAX_PASSWORD_FILE_BYTES, "the password file")
        text = contents.data.decode("utf-8")
    except UnreadableFile as error:
        _reject(where, error.message, str(path))
    except UnicodeDecodeError:
        _reject(where, "the password file is not UTF-8 text", str(path))
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        _reject(where, "the password file is empty", str(path))
    return password


def _rdns(spec: HopSpec, url: ProxyUrl) -> bool:
    scheme, wanted = url.scheme, spec.rdns
    if scheme in ("socks4", "socks4a"):
        implied = scheme == "socks4a"
        if wanted is not None and wanted != implied:
            other = "socks4a" if wanted else "socks4"
            _reject(("rdns",), f"{scheme} fixes rdns to {implied}; use {other}:// instead", wanted)
        return implied
    if scheme in ("http", "https"):
        if wanted is False:
            _reject(("rdns",), f"an {scheme} proxy always resolves the target itself", wanted)
        return True
    if url.telegram_link and wanted is False:
        _reject(("rdns",), "a Telegram socks link means remote DNS; use socks5:// instead", wanted)
    if url.remote_dns and wanted is False:
        _reject(("rdns",), "socks5h means remote DNS; use socks5:// instead", wanted)
    return True if wanted is None else wanted


def _check_credentials(
    scheme: str, username: str | None, password: str | None, spec: HopSpec
) -> None:
    user_loc: Loc = ("username",) if spec.username is not None else ("url",)
    pass_loc: Loc = (
        ("password",)
        if spec.password is not None
        else ("password_file",)
        if spec.password_file is not None
        else ("url",)
    )
    _reject_all(_credential_problems(scheme, username, password, user_loc, pass_loc))


def _credential_problems(
    scheme: str, username: str | None, password: str | None, user_loc: Loc, pass_loc: Loc
) -> list[tuple[Loc, str, Any]]:
    """What the scheme's authentication cannot send: a missing half, a socks4 password, and
    user names and passwords that its wire format cannot carry."""
    problems: list[tuple[Loc, str, Any]] = []
    if scheme in ("socks4", "socks4a"):
        if password is not None:
            problems.append(
                (
                    pass_loc,
                    f"{scheme} has no passwords (only a user id); use socks5 for "
                    "username/password authentication",
                    MASK,
                )
            )
    elif username is not None and password is None:
        problems.append((pass_loc, f"{scheme} authentication needs a password too", None))
    elif password is not None and username is None:
        problems.append((pass_loc, "a password was given without a user name", None))
    unprintable = None if username is None else _unprintable_user_name(scheme, username)
    if unprintable is not None:
        # Checked first: the other rules' messages would not say what is wrong with it.
        problems.append((user_loc, unprintable, username))
    elif scheme in ("http", "https") and username is not None and ":" in username:
        problems.append((user_loc, f"an {scheme} proxy user name cannot contain ':'", username))
    elif scheme in ("socks4", "socks4a") and username is not None and not username.isascii():
        problems.append((user_loc, f"a {scheme} user id must be ASCII", username))
    if scheme == "socks5":
        checked = [(pass_loc, "password", password)]
        if unprintable is None:
            checked.insert(0, (user_loc, "user name", username))
        for loc, name, value in checked:
            if value is not None and not (value.isascii() and 1 <= len(value) <= 255):
                problems.append(
                    (loc, f"a socks5 {name} must be 1 to 255 ASCII characters (RFC 1929)", MASK)
                )
    return problems


def _unprintable_user_name(scheme: str, username: str) -> str | None:
    """Why ``username`` cannot be used, if it holds a character that acts instead of being
    shown (a control character, a line separator, a bidirectional override): it would be
    printed raw in messages and logs, and a NUL ends a SOCKS4 user id early."""
    found = unprintable_character(username)
    if found is None:
        return None
    if scheme in ("socks4", "socks4a"):
        subject = f"a {scheme} user id"
    elif scheme == "socks5":
        subject = "a socks5 user name"
    else:
        subject = f"an {scheme} proxy user name"
    message = f"{subject} cannot contain {found}"
    if found.char == "\0" and scheme in ("socks4", "socks4a"):
        # The request is ... USERID NUL [HOST NUL]: the proxy reads the id up to the first NUL.
        rest = (
            "the host to connect to" if scheme == "socks4a" else "data to send through the tunnel"
        )
        message += (
            f": the user id ends at the first NUL, so the proxy would take the rest for {rest}"
        )
    return message


@dataclass(frozen=True)
class LocalLookup:
    """A host name this machine resolves itself (in the clear) to use a route."""

    name: str
    hop: int | None
    """The 1-based hop whose name this is; None for the Bot API host."""
    reason: str
    """Why: ``dials hop 1``, ``hop 2 is socks4``, ``direct connection``."""

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def _resolving_kind(hop: ProxyHop) -> str:
    return "socks5 with rdns: false" if hop.scheme == "socks5" else hop.scheme


def names_resolved_locally(route: ProxyRoute | None, target: str) -> tuple[LocalLookup, ...]:
    """Host names this machine resolves to reach ``target`` (the Bot API host) by ``route``.

    Direct: the target. Through a route: hop 1's name (the client dials it), and after every
    hop that does not resolve names (``socks4``, ``socks5`` with ``rdns: false``) the name of
    the next hop, or of the target after the last hop. IP addresses need no lookup.
    """
    if route is None:
        named = not is_ip_address(target)
        return (LocalLookup(target, None, "direct connection"),) if named else ()
    return route.resolved_locally(target)


class ProxyRoute(RootModel[tuple[ProxyHop, ...]]):
    """An ordered chain of one or more hops; the first hop is the one the client dials."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    @model_validator(mode="wrap")
    @classmethod
    def _errors_masked(
        cls, value: Any, handler: ModelWrapValidatorHandler[ProxyRoute]
    ) -> ProxyRoute:
        return _masking_errors(value, lambda: handler(value))

    @model_validator(mode="before")
    @classmethod
    def _as_hop_list(cls, value: Any) -> Any:
        if isinstance(value, ProxyRoute):
            return value.root
        if isinstance(value, (str, Mapping, ProxyHop)) or _is_url_with_basic_auth(value):
            return [value]
        if isinstance(value, (set, frozenset)):
            warnings.warn(
                "a proxy chain given as a set has no defined hop order; use a list or tuple",
                BotSessionWarning,
                stacklevel=outside_stacklevel(),
            )
        if isinstance(value, Iterable) and not isinstance(value, (bytes, bytearray)):
            hops = list(itertools.islice(value, MAX_HOPS + 1))
            if not hops:
                raise PydanticCustomError(
                    "empty_route",
                    "a proxy chain needs at least one hop; leave proxy unset for a direct "
                    "connection",
                )
            if len(hops) > MAX_HOPS:
                raise PydanticCustomError(
                    "long_route", f"a proxy chain may have at most {MAX_HOPS} hops"
                )
            return hops
        raise PydanticCustomError(
            "proxy_form", "expected a proxy URL, a mapping with url, or a list of them"
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # The schema describes what a user writes (URL, mapping, or a list of them), not the
        # canonical hops that validation produces.
        url = {
            "type": "string",
            "pattern": r"^([A-Za-z][A-Za-z0-9+.-]*://|(www\.)?(t\.me|telegram\.me|telegram\.dog)/)",
            "description": f"{URL_SHAPE}; scheme one of {SUPPORTED_TEXT}; or a Telegram SOCKS5 "
            f"link {TELEGRAM_LINK_SHAPE} (or tg://socks?…)",
        }
        hop = {"anyOf": [url, handler(HopSpec.__pydantic_core_schema__)]}
        chain = {
            "type": "array",
            "minItems": 1,
            "items": hop,
            "description": "a chain, in hop order",
        }
        return {"anyOf": [*hop["anyOf"], chain], "title": "Proxy route"}

    @property
    def hops(self) -> tuple[ProxyHop, ...]:
        return self.root

    def __iter__(self) -> Iterator[ProxyHop]:  # type: ignore[override]
        return iter(self.root)

    def __len__(self) -> int:
        return len(self.root)

    def __getitem__(self, index: int) -> ProxyHop:
        return self.root[index]

    def describe(self, target: str | None = None) -> str:
        """``client → socks5 10.0.0.1:1080 → https proxy.example:443 (TLS, auth) → target``.

        An https hop is marked ``TLS`` (``TLS not verified`` with ``verify: false``)."""
        steps = ["client"]
        for hop in self.root:
            notes = [
                *(["TLS" if hop.verify else "TLS not verified"] if hop.tls else []),
                *(["auth"] if hop.username is not None else []),
            ]
            marks = f" ({', '.join(notes)})" if notes else ""
            steps.append(f"{hop.scheme} {hop.address}{marks}")
        if target is not None:
            steps.append(target)
        return " → ".join(steps)

    def resolved_locally(self, target: str | None = None) -> tuple[LocalLookup, ...]:
        """The names this machine resolves for this route (see ``names_resolved_locally``).

        ``target`` is the host the last hop connects to; without it only hop names count.
        """
        lookups: list[LocalLookup] = []
        first = self.root[0]
        if not is_ip_address(first.host):
            lookups.append(LocalLookup(first.host, 1, "dials hop 1"))
        for number, hop in enumerate(self.root, start=1):
            if hop.rdns:
                continue
            last = number == len(self.root)
            name = target if last else self.root[number].host
            if name is None or is_ip_address(name):
                continue
            reason = f"hop {number} is {_resolving_kind(hop)}"
            lookups.append(LocalLookup(name, None if last else number + 1, reason))
        return tuple(lookups)

    def unverified_hops(self) -> list[str]:
        """Sentences about https hops whose certificate is not checked (``verify: false``)."""
        return [
            f"hop {number} ({hop.label(credentials=False)}) has verify: false, so its TLS "
            "certificate is not checked: anyone on the way can pose as the proxy and take its "
            "credentials; give the proxy's CA as ca_file instead"
            for number, hop in enumerate(self.root, start=1)
            if hop.tls and not hop.verify
        ]

    def leaked_hop_names(self) -> list[str]:
        """Sentences about hop names this machine must resolve because the hop before does not."""
        sentences = []
        for lookup in self.resolved_locally():
            if lookup.hop is None or lookup.hop == 1:
                continue
            before = self.root[lookup.hop - 2]
            sentences.append(
                f"hop {lookup.hop - 1} ({before.label(credentials=False)}) is "
                f"{_resolving_kind(before)}, so this machine resolves the name of hop "
                f"{lookup.hop} ({lookup.name}) itself, in the clear; use socks4a:// or socks5 "
                f"with remote DNS (rdns) for hop {lookup.hop - 1}, or give hop {lookup.hop} "
                "as an IP address"
            )
        return sentences

    def __repr__(self) -> str:
        return f"ProxyRoute({', '.join(repr(hop.label()) for hop in self.root)})"

    def __str__(self) -> str:
        return " → ".join(hop.label() for hop in self.root)


class ApiServer(BaseModel):
    """Where the Bot API lives: Telegram's servers or a local Bot API server."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    base: str = Field(
        DEFAULT_API_BASE,
        description="Base URL, e.g. http://127.0.0.1:8081 (a path prefix is kept)",
    )
    is_local: bool = Field(False, description="A local Bot API server (file paths are local).")

    @model_validator(mode="wrap")
    @classmethod
    def _errors_masked(cls, value: Any, handler: ModelWrapValidatorHandler[ApiServer]) -> ApiServer:
        return _masking_errors(value, lambda: handler(value))

    @field_validator("base")
    @classmethod
    def _http_url(cls, base: str) -> str:
        try:
            return normalise_http_base(base)
        except ValueError as error:
            raise PydanticCustomError("api_base", str(error)) from None

    @property
    def host(self) -> str:
        """The Bot API server's host: a lower-case ASCII name or an IP address (no brackets)."""
        return urlsplit(self.base).hostname or ""


class TlsSettings(BaseModel):
    """How the TLS connection to the Bot API server is verified (end to end, through proxies)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    verify: bool = Field(True, description="Verify the server certificate.")
    ca_file: FilePath | None = Field(
        None, description="PEM file of CA certificates to trust instead of certifi's bundle."
    )

    @model_validator(mode="after")
    def _consistent(self) -> TlsSettings:
        if self.ca_file is None:
            return self
        if not self.verify:
            _reject(("ca_file",), "ca_file has no effect when verify is false", str(self.ca_file))
        try:
            ssl.create_default_context(cafile=str(self.ca_file))
        except (ssl.SSLError, OSError) as error:
            reason = getattr(error, "reason", None) or error.strerror or type(error).__name__
            _reject(
                ("ca_file",), f"not a PEM file of CA certificates ({reason})", str(self.ca_file)
            )
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _errors_masked(
        cls, value: Any, handler: ModelWrapValidatorHandler[TlsSettings]
    ) -> TlsSettings:
        return _masking_errors(value, lambda: handler(value))


PositiveSeconds = Annotated[Number, Field(gt=0, allow_inf_nan=False)]

FLOORS: dict[str, tuple[float, str]] = {
    "timeout": (
        0.1,
        "no Bot API request is answered sooner through a network; a shorter timeout only "
        "fails every request",
    ),
    "connect_timeout": (
        0.1,
        "no route connects sooner; a shorter one fails every attempt and sends each request "
        "on to the next route",
    ),
    "fallback_hedge_after": (
        0.05,
        "no route answers sooner; hedging earlier only doubles the connections of every connect",
    ),
    "fallback_retry_primary_after": (
        1.0,
        "a failed route is checked at most once a second; checking it more often only makes "
        "connections to a proxy that is down (0.001 would make a thousand a second)",
    ),
}
"""The shortest each interval and timeout may be, in seconds, and why."""


class BotSessionConfig(BaseSettings):
    """The validated, immutable configuration of a bot session.

    As any pydantic-settings class, ``BotSessionConfig()`` reads its sources (keyword arguments,
    ``BOT_…`` variables, ``.env``, ``bot.yaml`` or ``$BOT_CONFIG``; see
    ``settings_customise_sources``) and raises pydantic's ``ValidationError``.
    ``botsession.load_config`` reads the same sources and raises one ``ConfigError`` that says
    where each bad value was written. As a field of an application's own settings it takes only
    what that application's sources give it (``MYAPP_TELEGRAM__PROXY=…``), and
    ``model_validate`` validates the data given: neither reads ``BOT_…`` variables, ``.env`` or
    ``bot.yaml``.
    """

    model_config = SettingsConfigDict(
        env_prefix="BOT_",
        env_nested_delimiter=NESTED_DELIMITER,
        case_sensitive=False,
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
    )

    proxy: ProxyRoute | None = Field(
        None, description="Proxy route: URL, mapping, or list of them (a chain). Unset = direct."
    )
    timeout: PositiveSeconds = Field(60.0, description="Request timeout in seconds.")
    connect_timeout: PositiveSeconds = Field(
        DEFAULT_CONNECT_TIMEOUT,
        description="Seconds allowed to connect and handshake through the whole route "
        f"(default {DEFAULT_CONNECT_TIMEOUT:g}, or timeout when that is shorter).",
    )
    limit: Integer = Field(100, ge=1, description="Maximum simultaneous connections.")
    api: ApiServer = Field(default_factory=ApiServer)
    ssl: TlsSettings = Field(default_factory=TlsSettings)
    fallback: tuple[ProxyRoute, ...] = Field(
        (),
        max_length=MAX_FALLBACKS,
        description="Alternative routes, in order: used when connecting through the active "
        "route fails (never after a request may have been sent).",
    )
    fallback_hedge_after: PositiveSeconds | None = Field(
        DEFAULT_HEDGE_AFTER,
        description="With fallback routes: when the active route has not connected within this "
        "many seconds, connect through the next route as well; the first tunnel ready wins "
        "(nothing is sent before, so no request is sent twice). Default "
        f"{DEFAULT_HEDGE_AFTER:g}, or half of connect_timeout when that is shorter; must be "
        "shorter than connect_timeout; null: only after a failure.",
    )
    fallback_retry_primary_after: PositiveSeconds | None = Field(
        DEFAULT_RETRY_PRIMARY_AFTER,
        description="A failed route is checked in the background (a tunnel to the Bot API "
        "host, no request) every this many seconds (each wait up to a fifth shorter, at "
        "random; above 6, from 6 s at doubling intervals); traffic returns to a "
        "higher-priority route once a check succeeds. So this is the longest a route that "
        "works again stays unused. null: stay on the route in use (checks still run, from "
        "6 s doubling to 60 s, for route_status).",
    )
    trust_env: bool = Field(
        False,
        description="Without a proxy, use ALL_PROXY / HTTPS_PROXY / HTTP_PROXY (either case), "
        "honouring NO_PROXY.",
    )

    @field_validator(*FLOORS)
    @classmethod
    def _not_too_short(cls, seconds: float | None, info: ValidationInfo) -> float | None:
        floor, why = FLOORS[info.field_name or ""]
        if seconds is not None and seconds < floor:
            raise PydanticCustomError("botsession", f"must be at least {floor:g} s: {why}")
        return seconds

    @field_validator("fallback", mode="before")
    @classmethod
    def _few_fallbacks(cls, value: Any) -> Any:
        # Refuse a huge list before validating thousands of routes one by one.
        if isinstance(value, (list, tuple)) and len(value) > MAX_FALLBACKS:
            raise PydanticCustomError(
                "long_route", f"at most {MAX_FALLBACKS} fallback routes, found {len(value)}"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> BotSessionConfig:
        problems: list[tuple[Loc, str, Any]] = []
        if "connect_timeout" not in self.model_fields_set and self.connect_timeout > self.timeout:
            # The default gives way to a shorter timeout: timeout=5 alone is a valid setting.
            object.__setattr__(self, "connect_timeout", self.timeout)
        if self.connect_timeout > self.timeout:
            message = f"connect_timeout must not exceed timeout ({self.timeout:g} s)"
            problems.append((("connect_timeout",), message, self.connect_timeout))
        if self.fallback and self.proxy is None:
            message = "fallback routes need a primary route in proxy"
            problems.append((("fallback",), message, None))
        problems += self._fallback_problems()
        _reject_all(problems)
        self._warn_about_local_lookups()
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _given_data_only(cls, value: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        # pydantic validates a mapping by calling this settings class with it (an application's
        # settings whose field this is, model_validate): that validates the data given, and
        # reads no BOT_ variable, .env or bot.yaml. Only BotSessionConfig() itself reads them,
        # in its __init__, before this runs.
        with validating_given_data():
            return _masking_errors(value, lambda: handler(value))

    def _fallback_problems(self) -> list[tuple[Loc, str, Any]]:
        """Settings of fallback behaviour that cannot work; the hedging default filled in."""
        problems: list[tuple[Loc, str, Any]] = []
        given = self.model_fields_set
        if "fallback_hedge_after" not in given:
            # The default follows fallback and connect_timeout (as connect_timeout follows
            # timeout): off without fallbacks, half of a short connect_timeout.
            hedge = min(DEFAULT_HEDGE_AFTER, self.connect_timeout / 2) if self.fallback else None
            object.__setattr__(self, "fallback_hedge_after", hedge)
        for name in ("fallback_hedge_after", "fallback_retry_primary_after"):
            if name in given and getattr(self, name) is not None and not self.fallback:
                message = f"{name} has no effect without fallback routes"
                problems.append(((name,), message, None))
        hedge = self.fallback_hedge_after
        if hedge is not None and self.fallback and hedge >= self.connect_timeout:
            message = (
                f"fallback_hedge_after must be shorter than connect_timeout "
                f"({self.connect_timeout:g} s): a route that has not connected by then has "
                "failed, and the next one is tried anyway; null turns hedging off"
            )
            problems.append((("fallback_hedge_after",), message, hedge))
        return problems

    def _warn_about_local_lookups(self) -> None:
        # pydantic-settings validates a model twice (its __init__, then model_validate's own
        # pass, on the same instance): warn once.
        if _LOOKUPS_CHECKED.get(id(self)) is self:
            return
        _LOOKUPS_CHECKED[id(self)] = self
        sentences = [
            f"{name}: {sentence}"
            for name, route in zip(self.route_names(), self.routes, strict=True)
            for sentence in route.leaked_hop_names()
        ]
        if sentences:
            warnings.warn("; ".join(sentences), BotSessionWarning, stacklevel=outside_stacklevel())
        unverified = [
            f"{name}: {sentence}"
            for name, route in zip(self.route_names(), self.routes, strict=True)
            for sentence in route.unverified_hops()
        ]
        if unverified:
            warnings.warn("; ".join(unverified), BotSessionWarning, stacklevel=outside_stacklevel())

    @property
    def routes(self) -> tuple[ProxyRoute, ...]:
        """The primary route and then the fallbacks; empty for a direct connection."""
        return () if self.proxy is None else (self.proxy, *self.fallback)

    def route_names(self) -> list[str]:
        """``proxy``, ``fallback[0]``, … for ``routes``, in the same order."""
        return [route_name(index) for index in range(len(self.routes))]

    def resolved_locally(self, route: ProxyRoute | None) -> tuple[LocalLookup, ...]:
        """The names this machine resolves to reach the Bot API by ``route`` (None: direct)."""
        return names_resolved_locally(route, self.api.host)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then ``BOT_…`` variables, ``.env`` and ``bot.yaml``: override this
        (and keep or reorder these) to add a source of your own."""
        # The prefix and the .env file follow pydantic-settings' own (``_env_prefix=``,
        # ``_env_file=``), as they would for its built-in sources.
        env_file = getattr(dotenv_settings, "env_file", None)
        reading = Reading(
            env_prefix=getattr(env_settings, "env_prefix", None) or "BOT_",
            env_file=env_file if isinstance(env_file, (str, PathLike)) else None,
        )
        return (
            init_settings,
            EnvironmentSource(settings_cls, reading),
            DotEnvSource(settings_cls, reading),
            YamlFileSource(settings_cls, reading),
        )

    @classmethod
    def _settings_build_values(
        cls, sources: tuple[PydanticBaseSettingsSource, ...], init_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        # pydantic-settings would merge the sources with deep_update, which cannot tell a route
        # that replaces a route (BOT_PROXY over a YAML chain) from hop settings that complete it
        # (BOT_PROXY__PASSWORD); botsession's merge does both and keeps where values came from.
        merged = _merged_data(sources_to_read(sources), default_api_base(cls))
        del sources, init_kwargs  # raw input stays out of the locals of a traceback from here
        if isinstance(merged, ConfigError):
            raise merged
        return merged


def _merged_data(
    sources: tuple[PydanticBaseSettingsSource, ...], api_base: str
) -> dict[str, Any] | ConfigError:
    """The sources' data merged, or the error listing their problems (returned, not raised:
    raised here, it would carry this frame, whose locals hold every value read)."""
    stack, _ = merge_sources(sources, api_base)
    if stack.problems:
        return redacted_error(stack.problems, stack.data)
    return stack.data


_LOOKUPS_CHECKED: weakref.WeakValueDictionary[int, BotSessionConfig] = weakref.WeakValueDictionary()


def yaml_json_schema() -> dict[str, Any]:
    """The JSON Schema of a ``bot.yaml`` file: the settings plus ``profiles``."""
    schema = BotSessionConfig.model_json_schema()
    for name, (floor, _why) in FLOORS.items():
        # pydantic writes the number's bound as "gt" (not JSON Schema) behind the validator
        # that refuses booleans; editors are told the floor.
        field = schema["properties"][name]
        for number in [field, *field.get("anyOf", ())]:
            if number.get("type") == "number":
                number.pop("gt", None)
                number["minimum"] = floor
    settings = {
        "type": "object",
        "additionalProperties": False,
        "properties": dict(schema["properties"]),
        "title": "Settings of one profile",
    }
    schema["$defs"]["ProfileSettings"] = settings
    schema["properties"]["profiles"] = {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": {"$ref": "#/$defs/ProfileSettings"},
        "description": "Named configurations; the chosen one is laid over the top-level keys.",
    }
    schema["properties"]["default_profile"] = {
        "type": "string",
        "description": "The profile used when neither profile= nor $BOT_PROFILE chooses one.",
    }
    schema.update(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "botsession configuration (bot.yaml)",
            "description": "Proxy routes and connection settings of a Telegram bot session.",
        }
    )
    return schema
