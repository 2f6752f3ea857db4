"""Every accepted proxy form normalises to one canonical, immutable route."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from botsession import BotSessionWarning, ConfigError, ProxyHop, ProxyRoute, load_config

from .support import basic_auth


def route(value: object) -> ProxyRoute:
    config = load_config(proxy=value)
    assert config.proxy is not None
    return config.proxy


def hop_fields(hop: ProxyHop) -> tuple[object, ...]:
    return (hop.scheme, hop.host, hop.port, hop.username, hop.secret(), hop.rdns)


def test_url_string_is_one_hop() -> None:
    """A URL string becomes a single hop with its parts decoded."""
    (hop,) = route("socks5://alice:p%40ss%2Fw%23rd@Proxy.Example:1080")
    assert hop_fields(hop) == ("socks5", "proxy.example", 1080, "alice", "p@ss/w#rd", True)


def test_one_trailing_slash_is_allowed() -> None:
    """socks5://host:port/ is the same hop as socks5://host:port (the port keeps its digits)."""
    hops = route(["socks5://127.0.0.1:1080/", "http://[::1]:3128/"])
    assert [(hop.host, hop.port) for hop in hops] == [("127.0.0.1", 1080), ("::1", 3128)]


def test_ports_run_from_1_to_65535() -> None:
    """The smallest and the largest port are hops' ports (0 and 65536 are refused)."""
    hops = route(["socks5://127.0.0.1:1", "socks5://127.0.0.1:65535"])
    assert [hop.port for hop in hops] == [1, 65535]


def test_credentials_are_kept_as_written() -> None:
    """Upper case, punctuation and a second ':' stay in the user name and password as written."""
    (hop,) = route("socks5://Xavier:XP4ss!$&'()*+,;=:X~@127.0.0.1:1080")
    assert (hop.username, hop.secret()) == ("Xavier", "XP4ss!$&'()*+,;=:X~")


def test_schemes_are_case_insensitive_and_socks5h_is_remote_dns_socks5() -> None:
    """SOCKS5H://, Socks4A:// and HTTP:// are read case-insensitively."""
    hops = route(["SOCKS5H://127.0.0.1:1", "Socks4A://127.0.0.1:2", "HTTP://127.0.0.1:3"])
    assert [(h.scheme, h.rdns) for h in hops] == [
        ("socks5", True),
        ("socks4a", True),
        ("http", True),
    ]


def test_socks4_resolves_locally_and_socks4a_remotely() -> None:
    """socks4 means the client resolves the target; socks4a lets the proxy do it."""
    socks4, socks4a = route(["socks4://127.0.0.1:1", "socks4a://127.0.0.1:2"])
    assert (socks4.rdns, socks4a.rdns) == (False, True)


def test_socks5_rdns_can_be_turned_off_in_the_mapping_form() -> None:
    """``rdns: false`` makes a socks5 hop resolve names on the client."""
    (hop,) = route({"url": "socks5://127.0.0.1:1080", "rdns": False})
    assert hop.rdns is False


def test_ipv6_host_in_brackets() -> None:
    """An IPv6 proxy address is written in brackets and kept unbracketed."""
    (hop,) = route("socks5://[::1]:1080")
    assert (hop.host, hop.address, hop.url) == ("::1", "[::1]:1080", "socks5://[::1]:1080")


def test_mapping_fields_win_over_url_credentials() -> None:
    """``username``/``password`` in the mapping replace those in the URL."""
    (hop,) = route({"url": "http://urluser:urlpass@127.0.0.1:3128", "password": "fieldpass"})
    assert (hop.username, hop.secret()) == ("urluser", "fieldpass")
    (hop,) = route({"url": "http://urluser:urlpass@127.0.0.1:3128", "username": "fielduser"})
    assert (hop.username, hop.secret()) == ("fielduser", "urlpass")


def test_password_file_is_read_and_trailing_newline_stripped(tmp_path: Path) -> None:
    """``password_file`` supplies the password without its trailing newline."""
    secret = tmp_path / "pw"
    secret.write_text("from-file \n")
    (hop,) = route({"url": "socks5://bob@127.0.0.1:1080", "password_file": str(secret)})
    assert hop.secret() == "from-file "


def test_list_is_a_chain_in_order() -> None:
    """A list of forms is a chain; the first hop is the one the client dials."""
    hops = route(["socks5://127.0.0.1:1", {"url": "http://127.0.0.1:2"}, "socks4://127.0.0.1:3"])
    assert [h.port for h in hops] == [1, 2, 3]


def test_url_with_basic_auth_is_one_hop_and_basic_auth_wins() -> None:
    """``(url, BasicAuth)`` is one hop; BasicAuth replaces URL credentials, as aiogram documents."""
    (hop,) = route(("socks5://old:oldpw@127.0.0.1:1080", basic_auth("new", "newpw")))
    assert (hop.username, hop.secret()) == ("new", "newpw")


def test_two_tuple_of_urls_is_a_two_hop_chain() -> None:
    """A 2-tuple of URLs is a chain of two hops (aiogram silently keeps only one)."""
    hops = route(("socks5://127.0.0.1:1", "http://127.0.0.1:2"))
    assert [(h.scheme, h.port) for h in hops] == [("socks5", 1), ("http", 2)]


def test_chain_of_basic_auth_pairs_and_generators() -> None:
    """Any iterable of forms is a chain, pairs with BasicAuth included."""
    pairs = ((f"socks5://127.0.0.1:{p}", basic_auth(f"u{p}", "pw")) for p in (1, 2))
    assert [h.username for h in route(pairs)] == ["u1", "u2"]


def test_set_is_accepted_with_a_warning_about_order() -> None:
    """A set works (aiogram's docs show one) but warns that hop order is undefined."""
    with pytest.warns(BotSessionWarning, match="no defined hop order"):
        hops = route({"socks5://127.0.0.1:1", "socks5://127.0.0.1:2"})
    assert sorted(h.port for h in hops) == [1, 2]


def test_empty_chain_is_an_error() -> None:
    """An empty chain is refused with advice to leave proxy unset instead."""
    with pytest.raises(ConfigError, match="at least one hop; leave proxy unset"):
        load_config(proxy=[])


def test_route_and_hop_are_immutable() -> None:
    """The canonical model cannot be changed after validation."""
    value = route("socks5://127.0.0.1:1080")
    with pytest.raises(ValidationError):
        value[0].port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        value.root[0] = value[0]  # type: ignore[index]


def test_validated_route_and_hops_pass_through_unchanged() -> None:
    """A route or hop that is already validated is accepted as it is."""
    first = route(["socks5://127.0.0.1:1", "http://127.0.0.1:2"])
    assert route(first) == first
    assert route(first[1]) == ProxyRoute.model_validate([first[1]])


def test_repr_and_str_mask_the_password() -> None:
    """repr and str show credentials as ***."""
    hops = route(
        ["socks5://alice:hunter22@127.0.0.1:1", {"url": "socks5://127.0.0.1:2", "rdns": False}]
    )
    assert repr(hops) == "ProxyRoute('socks5://alice:***@127.0.0.1:1', 'socks5://127.0.0.1:2')"
    assert repr(hops[0]) == "ProxyHop('socks5://alice:***@127.0.0.1:1')"
    assert repr(hops[1]) == "ProxyHop('socks5://127.0.0.1:2', rdns=False)"
    assert str(hops) == "socks5://alice:***@127.0.0.1:1 → socks5://127.0.0.1:2"
    assert hops.describe("api.telegram.org") == (
        "client → socks5 127.0.0.1:1 (auth) → socks5 127.0.0.1:2 → api.telegram.org"
    )


def only_problem(url: str) -> tuple[str, str, str]:
    """Where, at which path and in which words load_config(proxy=url) reports its one problem."""
    with pytest.raises(ConfigError) as caught:
        load_config(proxy=url)
    [problem] = caught.value.problems
    return problem.where, problem.path, problem.message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "socks6://127.0.0.1:1",
            "unsupported protocol 'socks6'; expected one of http, https, socks4, socks4a, socks5 "
            "(or socks5h)",
        ),
        (
            "socks://127.0.0.1:1",
            "unsupported protocol 'socks' (say which SOCKS version: socks4, socks4a or socks5); "
            "expected one of http, https, socks4, socks4a, socks5 (or socks5h)",
        ),
        (
            "socks5a://127.0.0.1:1",
            "unsupported protocol 'socks5a' (socks5 resolves names on the proxy already (remote "
            "DNS is its default)); expected one of http, https, socks4, socks4a, socks5 (or "
            "socks5h)",
        ),
        (
            "tg://proxy?server=127.0.0.1&port=1&secret=ee",
            "this is an MTProto proxy link (t.me/proxy or tg://proxy): an MTProto proxy carries "
            "only Telegram's own app protocol, not the HTTPS requests of the Bot API, so a bot "
            "cannot use it; use a SOCKS5 proxy (a t.me/socks link works as it is), an HTTP or "
            "HTTPS proxy, or run the bot where api.telegram.org is reachable (Telethon and "
            "kurigram speak that protocol, but botsession does not route them through an "
            "MTProto proxy: give the link to the client's own proxy setting instead)",
        ),
        (
            "ftp://127.0.0.1:1",
            "unsupported protocol 'ftp'; expected one of http, https, socks4, socks4a, socks5 (or "
            "socks5h)",
        ),
        (
            "127.0.0.1:1080",
            "no protocol; expected scheme://[user[:password]@]host:port with scheme one of http, "
            "https, socks4, socks4a, socks5 (or socks5h)",
        ),
        ("", "the proxy URL is empty; expected scheme://[user[:password]@]host:port"),
        (
            "socks5://127.0.0.1",
            "the port is missing; expected scheme://[user[:password]@]host:port",
        ),
        ("socks5://[::1]", "the port is missing; expected scheme://[user[:password]@]host:port"),
        (
            "socks5://[::1]1080",
            "the port is missing; expected scheme://[user[:password]@]host:port",
        ),
        ("socks5://127.0.0.1:0", "the port must be a number from 1 to 65535, found 0"),
        ("socks5://127.0.0.1:65536", "the port must be a number from 1 to 65535, found 65536"),
        ("socks5://127.0.0.1:99999", "the port must be a number from 1 to 65535, found 99999"),
        ("socks5://127.0.0.1:999999", "the port must be a number from 1 to 65535, found 6 digits"),
        ("socks5://127.0.0.1:http", "the port must be a number from 1 to 65535"),
        ("socks5://::1:1080", "an IPv6 address must be in brackets, as in socks5://[::1]:1080"),
        ("socks5://[::1:1080", "the IPv6 address has no closing ']'"),
        (
            "socks5://[::1]]:1080",
            "the port is missing; expected scheme://[user[:password]@]host:port",
        ),
        ("socks5://[nope]:1080", "'nope' is not an IPv6 address"),
        ("socks5://:1080", "the host is missing; expected scheme://[user[:password]@]host:port"),
        (
            "socks5://bad host:1080",
            "the proxy URL contains a space, tab, line break or other control character; "
            "percent-encode it (%20 for a space) or use the mapping form (url plus a separate "
            "password or password_file)",
        ),
        (
            "socks5://bad!host:1080",
            "'bad!host' is not a valid host name: '!' is not allowed (letters, digits, '-', '_' "
            "and '.' only)",
        ),
        (
            "socks5://127.0.0.1:1080/path",
            "a proxy URL has no path, query or fragment; expected "
            "scheme://[user[:password]@]host:port",
        ),
        (
            "socks5://127.0.0.1:1080?x",
            "a proxy URL has no path, query or fragment; expected "
            "scheme://[user[:password]@]host:port",
        ),
        ("socks5://:pw@127.0.0.1:1080", "the URL has a password but no user name"),
        (
            "socks5://u:pa?ss@127.0.0.1:1080",
            "the user name or password contains an unencoded '/', '?' or '#'; percent-encode it "
            "(%2F, %3F, %23) or use the mapping form (url plus a separate password or "
            "password_file)",
        ),
        (
            "socks5://u:pa/ss@127.0.0.1:1080",
            "the user name or password contains an unencoded '/', '?' or '#'; percent-encode it "
            "(%2F, %3F, %23) or use the mapping form (url plus a separate password or "
            "password_file)",
        ),
        ("socks5://u:%FF@127.0.0.1:1080", "the credentials are not valid percent-encoded UTF-8"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    """Each malformed URL gets one error, in these words, that explains the actual mistake."""
    assert only_problem(url) == ("keyword argument proxy=", "proxy", message)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("socks5://:pw@127.0.0.1:1080", "the URL has a password but no user name"),
        ("socks5://%FF:pw@127.0.0.1:1080", "the credentials are not valid percent-encoded UTF-8"),
        ("socks5://u:%C3@127.0.0.1:1080", "the credentials are not valid percent-encoded UTF-8"),
        (
            "socks5://u:pa#ss@127.0.0.1:1080",
            "the user name or password contains an unencoded '/', '?' or '#'; percent-encode it "
            "(%2F, %3F, %23) or use the mapping form (url plus a separate password or "
            "password_file)",
        ),
    ],
    ids=["password-without-user", "user-not-utf8", "password-not-utf8", "unencoded-hash"],
)
def test_credential_errors_are_whole_and_show_no_credentials(url: str, message: str) -> None:
    """A credential problem is one message at proxy, exactly this text: no user or password."""
    assert only_problem(url) == ("keyword argument proxy=", "proxy", message)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"url": "socks4://u:pw@127.0.0.1:1"}, "socks4 has no passwords"),
        ({"url": "socks5://u@127.0.0.1:1"}, "socks5 authentication needs a password too"),
        (
            {"url": "http://127.0.0.1:1", "password": "x"},
            "a password was given without a user name",
        ),
        (
            {"url": "socks5://u:pw@127.0.0.1:1", "password": "a", "password_file": "/x"},
            "either password or password_file",
        ),
        (
            {"url": "socks5://127.0.0.1:1", "username": "ü", "password": "x"},
            "1 to 255 ASCII characters",
        ),
        ({"url": "http://127.0.0.1:1", "username": "a:b", "password": "x"}, "cannot contain ':'"),
        ({"url": "socks4://127.0.0.1:1", "rdns": True}, "use socks4a:// instead"),
        ({"url": "socks4a://127.0.0.1:1", "rdns": False}, "use socks4:// instead"),
        ({"url": "socks5h://127.0.0.1:1", "rdns": False}, "socks5h means remote DNS"),
        ({"url": "http://127.0.0.1:1", "rdns": False}, "always resolves the target itself"),
        (
            {"url": "socks5://u@127.0.0.1:1", "password_file": "/nonexistent/pw"},
            "cannot read the password file",
        ),
        ({"username": "x"}, "proxy.url: this setting is required here"),
        (42, "proxy: expected a proxy URL, a mapping with url, or a list of them, found 42"),
    ],
)
def test_inconsistent_hops_are_refused(value: object, message: str) -> None:
    """Credentials and DNS settings that cannot work are errors, not silent surprises."""
    with pytest.raises(ConfigError, match="1 problem") as caught:
        load_config(proxy=value)
    assert message in str(caught.value)


def test_empty_password_file_is_an_error(tmp_path: Path) -> None:
    """An empty password file is refused rather than sending an empty password."""
    empty = tmp_path / "pw"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="the password file is empty"):
        load_config(proxy={"url": "socks5://u@127.0.0.1:1", "password_file": str(empty)})


def test_braces_in_a_message_are_shown_as_written() -> None:
    """A message quoting a value with braces shows them once (pydantic does not format a
    custom message without context, so nothing needs escaping)."""
    with pytest.raises(ValidationError) as caught:
        ProxyRoute.model_validate("socks5://a{b}:1")
    (error,) = caught.value.errors()
    assert error["msg"] == (
        "'a{b}' is not a valid host name: '{' is not allowed (letters, digits, '-', '_' and '.' "
        "only)"
    )
    with pytest.raises(ConfigError) as config_error:
        load_config(api={"base": "https://a{x}b"})
    assert "api.base: 'a{x}b' is not a valid host name: '{' is not allowed" in str(
        config_error.value
    )
