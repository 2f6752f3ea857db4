"""Telegram proxy links (issue #13): t.me/socks and tg://socks links are SOCKS5 hops with remote
DNS wherever a hop URL is accepted; MTProto links are refused, and neither a link's password
nor an MTProto secret is ever shown."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from botsession import ConfigError, build_session_from_config, load_config
from botsession.config_schema import ProxyHop, ProxyRoute
from botsession.redaction import collect_secrets, has_url_password, redact_url

from .conftest import ProxyFactory
from .servers import BotApiStandIn
from .support import LOOPBACK, SENTINEL, free_port, get_me, session_for
from .test_cli import botsession

SECRET = "ee0123456789abcdef0123456789abcdef7777772e676f6f676c652e636f6d"
"""An MTProto proxy secret (fake-TLS form), which must never be shown."""


def link(server: str = "proxy.example", port: object = 1080, **extra: str) -> str:
    """``https://t.me/socks?server=…&port=…`` plus ``extra`` parameters, given as written."""
    query = f"server={server}&port={port}" + "".join(f"&{k}={v}" for k, v in extra.items())
    return f"https://t.me/socks?{query}"


# --- what a link means -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"https://t.me/socks?server=proxy.example&port=1080&user=bot&pass={quote(SENTINEL)}",
        f"tg://socks?server=proxy.example&port=1080&user=bot&pass={SENTINEL}",
        f"t.me/socks?server=proxy.example&port=1080&user=bot&pass={SENTINEL}",
        f"http://telegram.me/socks?port=1080&pass={SENTINEL}&server=PROXY.example&user=bot",
        f"TG://SOCKS?SERVER=proxy.example&PORT=1080&USER=bot&PASS={SENTINEL}",
        f"https://t.me/socks/?&server=proxy.example&&port=1080&user=bot&pass={SENTINEL}&",
    ],
    ids=["t.me", "tg", "no-scheme", "telegram.me-any-order", "upper-case", "slash-empty-params"],
)
def test_a_socks_link_is_a_socks5_hop_with_remote_dns(text: str) -> None:
    """Every spelling of a SOCKS5 link is socks5://bot:…@proxy.example:1080 with remote DNS."""
    hop = ProxyHop.model_validate(text)
    assert (hop.scheme, hop.host, hop.port, hop.username, hop.secret(), hop.rdns) == (
        "socks5",
        "proxy.example",
        1080,
        "bot",
        SENTINEL,
        True,
    )
    assert str(hop) == "socks5://bot:***@proxy.example:1080"


def test_link_values_are_percent_decoded() -> None:
    """Percent-encoded user names, passwords and host names are decoded; '+' stays a '+'."""
    hop = ProxyHop.model_validate(
        link("stra%C3%9Fe.de", 443, user="b%2Bt", **{"pass": "p%26w%3Dx+y%2B%20z"})
    )
    assert (hop.host, hop.username, hop.secret()) == ("xn--strae-oqa.de", "b+t", "p&w=x+y+ z")


def test_an_unencoded_equals_sign_stays_in_the_value() -> None:
    """Only the first '=' of a parameter ends its name: pass=a=b is the password 'a=b'."""
    hop = ProxyHop.model_validate(link(user="bot", **{"pass": f"{SENTINEL}=x=="}))
    assert (hop.username, hop.secret()) == ("bot", f"{SENTINEL}=x==")


def test_a_link_without_credentials_and_with_ipv6() -> None:
    """A link may leave out user and pass (or leave them empty); an IPv6 server may be
    bracketed or not."""
    assert (
        str(ProxyHop.model_validate("tg://socks?server=[::1]&port=9050")) == "socks5://[::1]:9050"
    )
    assert str(ProxyHop.model_validate("tg://socks?server=::1&port=1&user=&pass=")) == (
        "socks5://[::1]:1"
    )


def test_a_link_takes_hop_fields_in_the_mapping_form(tmp_path: Path) -> None:
    """In the mapping form a link is the url; a separate password (file) wins over its pass."""
    (tmp_path / "pw").write_text(SENTINEL + "\n")
    hop = ProxyHop.model_validate(
        {"url": link(user="bot", **{"pass": "old"}), "password_file": "pw"}
    )
    assert (hop.username, hop.secret()) == ("bot", SENTINEL)


# --- wherever a hop URL is accepted --------------------------------------------------------


async def test_get_me_through_a_socks5_proxy_given_as_a_link(
    bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A t.me/socks link with credentials reaches a SOCKS5 proxy, which resolves the name."""
    socks = proxy("socks5", "bot", SENTINEL)
    me = await get_me(
        session_for(
            bot_api, link(LOOPBACK, socks.port, user="bot", **{"pass": SENTINEL}), host="localhost"
        )
    )
    assert me.username == "standin_bot"
    assert socks.destinations == [("localhost", bot_api.port)]  # remote DNS


async def test_links_in_yaml_chains_fallbacks_and_profiles(
    tmp_path: Path, bot_api: BotApiStandIn, proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bot.yaml takes links as a hop of a chain (with ${VAR} in pass), in fallback routes and
    in profiles; the chain built from links works."""
    first, second = proxy("socks5"), proxy("socks5", "bot", SENTINEL)
    hop2 = f"tg://socks?server=127.0.0.1&port={second.port}&user=bot&pass=${{LINK_PASSWORD}}"
    spare = f"tg://socks?server=127.0.0.1&port={second.port}&user=bot&pass={SENTINEL}"
    dead = free_port()
    (tmp_path / "bot.yaml").write_text(
        "proxy:\n"
        f"  - {link(LOOPBACK, first.port)}\n"
        f'  - "{hop2}"\n'
        f"api:\n  base: {bot_api.base}\n"
        f"fallback:\n  - {link(LOOPBACK, dead)}\n"
        f"profiles:\n  spare:\n    proxy: '{spare}'\n  main: {{}}\n"
        "default_profile: main\n"
    )
    monkeypatch.setenv("LINK_PASSWORD", SENTINEL)
    config = load_config("bot.yaml")
    assert [str(route) for route in config.routes] == [
        f"socks5://127.0.0.1:{first.port} → socks5://bot:***@127.0.0.1:{second.port}",
        f"socks5://127.0.0.1:{dead}",
    ]
    assert config.routes[0][1].secret() == SENTINEL
    assert str(load_config("bot.yaml", profile="spare").proxy) == (
        f"socks5://bot:***@127.0.0.1:{second.port}"
    )
    await get_me(build_session_from_config("bot.yaml"))
    assert first.destinations == [(LOOPBACK, second.port)]
    assert second.destinations == [(LOOPBACK, bot_api.port)]


def test_links_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOT_PROXY may be a link, BOT_FALLBACK a JSON list of links, and HTTPS_PROXY with
    trust_env a link too."""
    monkeypatch.setenv("BOT_PROXY", f"tg://socks?server=10.0.0.1&port=1080&user=u&pass={SENTINEL}")
    monkeypatch.setenv("BOT_FALLBACK", json.dumps([[link("10.0.0.2", 1081)]]))
    config = load_config()
    assert [str(route) for route in config.routes] == [
        "socks5://u:***@10.0.0.1:1080",
        "socks5://10.0.0.2:1081",
    ]
    monkeypatch.delenv("BOT_PROXY")
    monkeypatch.delenv("BOT_FALLBACK")
    monkeypatch.setenv("HTTPS_PROXY", link("10.0.0.3", 1082))
    assert str(load_config(trust_env=True).proxy) == "socks5://10.0.0.3:1082"


def test_a_link_as_a_python_keyword_argument() -> None:
    """proxy= takes a link like any URL, alone or in a chain."""
    config = load_config(proxy=[link("10.0.0.1", 1), "tg://socks?server=10.0.0.2&port=2"])
    assert str(config.proxy) == "socks5://10.0.0.1:1 → socks5://10.0.0.2:2"


# --- bad links -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f"https://t.me/socks?port=1080&user=bot&pass={SENTINEL}",
            "the Telegram link has no server (the proxy's host); expected "
            "https://t.me/socks?server=HOST&port=PORT (with user and pass if needed)",
        ),
        (
            f"tg://socks?server=proxy.example&user=bot&pass={SENTINEL}",
            "the Telegram link has no port; expected https://t.me/socks?server=HOST&port=PORT",
        ),
        (
            link(port="99999", user="bot", **{"pass": SENTINEL}),
            "the port must be a number from 1 to 65535, found 99999 (the port of the Telegram link)",
        ),
        (
            link(port="http", user="bot", **{"pass": SENTINEL}),
            "the port must be a number from 1 to 65535 (the port of the Telegram link)",
        ),
        (
            link("bad!host", user="bot", **{"pass": SENTINEL}),
            "the server of the Telegram link: 'bad!host' is not a valid host name: '!' is not allowed",
        ),
        (
            link(user="bot", password=SENTINEL),
            "the Telegram link has a parameter other than server, port, user and pass",
        ),
        (
            link(user="bot", **{"pass": f"{SENTINEL}&{SENTINEL}"}),
            "the Telegram link has a parameter other than server, port, user and pass (a misspelt "
            "name, or an '&' in a value that is not percent-encoded as %26)",
        ),
        (link(**{"pass": SENTINEL}), "the Telegram link has a pass but no user"),
        (link(user="bot"), "socks5 authentication needs a password too"),
        (link(user="bot", **{"pass": SENTINEL}) + "&user=x", "the Telegram link gives user twice"),
        (
            link(user="bot", **{"pass": f"{SENTINEL}%FF"}),
            "the pass of the Telegram link is not valid percent-encoded UTF-8",
        ),
        (
            link(user="bot", **{"pass": f"{SENTINEL}#x"}),
            "the Telegram link contains an unencoded '#'; percent-encode it as %23",
        ),
        (
            "https://t.me/joinchat/AAAA",
            "this Telegram link is not a proxy link; a SOCKS5 proxy link",
        ),
        ("tg://resolve?domain=botfather", "this Telegram link is not a proxy link"),
        ("https://t.me/SocksX?server=proxy.example&port=1080", "this Telegram link is not a"),
        ("tg://socks?server=[::1&port=1", "the server of the Telegram link: '[::1' is not an"),
        ("tg://socks", "the Telegram link has no server (the proxy's host); expected https:"),
    ],
    ids=[
        "no-server",
        "no-port",
        "port-too-big",
        "port-not-a-number",
        "bad-server",
        "password-key",
        "unencoded-ampersand",
        "pass-without-user",
        "user-without-pass",
        "twice",
        "not-utf8",
        "hash",
        "joinchat",
        "resolve",
        "channel-named-like-socks",
        "half-bracketed",
        "no-query",
    ],
)
def test_bad_links_are_reported_like_any_hop_error_without_the_password(
    text: str, message: str, tmp_path: Path
) -> None:
    """Each bad link is one located problem saying what is wrong; its password never shows."""
    (tmp_path / "bot.yaml").write_text(
        f"proxy:\n  - socks5://127.0.0.1:1\n  - {json.dumps(text)}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config("bot.yaml")
    [problem] = caught.value.problems
    assert (problem.where, problem.path) == ("bot.yaml:3:5", "proxy[1]")
    assert problem.message.startswith(message)
    shown = str(caught.value) + repr(caught.value)
    assert SENTINEL not in shown
    assert quote(SENTINEL) not in shown


def test_rdns_false_contradicts_a_link() -> None:
    """A link means remote DNS: rdns: false on it is refused."""
    with pytest.raises(ConfigError, match="a Telegram socks link means remote DNS"):
        load_config(proxy={"url": link(), "rdns": False})


# --- MTProto links ---------------------------------------------------------------------------

MTPROTO_LINKS = [
    f"tg://proxy?server=proxy.example&port=443&secret={SECRET}",
    f"https://t.me/proxy?server=proxy.example&port=443&secret={SECRET}",
    f"t.me/proxy?secret={SECRET}&server=proxy.example&port=443",
]


@pytest.mark.parametrize("text", MTPROTO_LINKS, ids=["tg", "t.me", "no-scheme"])
def test_mtproto_links_are_refused_with_what_to_use_instead(
    text: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An MTProto link is a ConfigError saying why a bot cannot use it and what to use; the
    secret shows nowhere (YAML, environment, keyword argument)."""
    expected = (
        "this is an MTProto proxy link (t.me/proxy or tg://proxy): an MTProto proxy carries only "
        "Telegram's own app protocol, not the HTTPS requests of the Bot API, so a bot cannot use "
        "it; use a SOCKS5 proxy (a t.me/socks link works as it is), an HTTP or HTTPS proxy, or "
        "run the bot where api.telegram.org is reachable (Telethon and kurigram speak that "
        "protocol, but botsession does not route them through an MTProto proxy: give the link "
        "to the client's own proxy setting instead)"
    )
    (tmp_path / "bot.yaml").write_text(f"proxy: {json.dumps(text)}\n")
    errors = []
    for load in (
        lambda: load_config("bot.yaml"),
        lambda: load_config(proxy=text),
        lambda: load_config(fallback=[text], proxy="socks5://127.0.0.1:1"),
    ):
        with pytest.raises(ConfigError) as caught:
            load()
        errors.append(caught.value)
    monkeypatch.setenv("BOT_PROXY", text)
    with pytest.raises(ConfigError) as caught:
        load_config()
    errors.append(caught.value)
    for error in errors:
        [problem] = error.problems
        assert problem.message == expected
        assert SECRET not in str(error) + repr(error)
    assert [problem.where for error in errors for problem in error.problems] == [
        "bot.yaml:1:8",
        "keyword argument proxy=",
        "keyword argument fallback=",
        "environment variable BOT_PROXY",
    ]


def test_the_cli_never_shows_a_secret_or_a_link_password(tmp_path: Path) -> None:
    """check fails on an MTProto link without its secret; show masks a link's pass in the
    fields it lists."""
    (tmp_path / "bot.yaml").write_text(
        f"proxy: 'tg://proxy?server=a.example&port=443&secret={SECRET}'\n"
    )
    check = botsession("check", "bot.yaml")
    assert check.returncode == 1
    assert "MTProto" in check.stderr
    assert SECRET not in check.stdout + check.stderr
    (tmp_path / "bot.yaml").write_text("proxy:\n  rdns: true\n")
    env = {"BOT_PROXY__URL": f"tg://socks?server=a.example&port=1080&user=bot&pass={SENTINEL}"}
    show = botsession("show", "bot.yaml", env=env)
    assert show.returncode == 0, show.stderr
    rows = [" ".join(line.split()) for line in show.stdout.splitlines()]
    assert "proxy socks5://bot:***@a.example:1080 bot.yaml:2:3" in rows
    assert (
        "proxy.url tg://socks?server=a.example&port=1080&user=bot&pass=*** "
        "environment variable BOT_PROXY__URL" in rows
    )
    shown_json = botsession("show", "--json", "bot.yaml", env=env).stdout
    assert SENTINEL not in show.stdout + show.stderr + shown_json


async def test_repr_and_logs_never_show_a_link_password(
    bot_api: BotApiStandIn, proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Hops, routes and hop specs made from a link show its password as ***, and so does the
    log line of a switch to a fallback route."""
    from botsession.config_schema import HopSpec

    text = link(user="bot", **{"pass": SENTINEL})
    route = ProxyRoute.model_validate([text])
    shown = [repr(route), str(route), repr(route[0]), repr(HopSpec(url=text))]
    assert shown[-1] == (
        "HopSpec(url='https://t.me/socks?server=proxy.example&port=1080&user=bot&pass=***', "
        "username=None, password=None, password_file=None, rdns=None, ca_file=None, verify=None)"
    )
    backup = proxy("socks5")
    dead = link(LOOPBACK, free_port(), user="bot", **{"pass": SENTINEL})
    await get_me(session_for(bot_api, dead, fallback=[backup.url()]))
    [switch] = [r.getMessage() for r in caplog.records if r.name == "botsession"]
    assert switch.startswith("route proxy (socks5://bot:***@127.0.0.1:")
    assert all(SENTINEL not in text for text in [*shown, caplog.text])


# --- redaction -------------------------------------------------------------------------------


def test_redaction_masks_link_passwords_and_secrets() -> None:
    """redact_url masks pass= and secret= values (in a value up to the next parameter, in
    free text up to a space or quote); collect_secrets finds them decoded and raw."""
    assert redact_url(link(user="u", **{"pass": "a b"}), value=True) == (
        "https://t.me/socks?server=proxy.example&port=1080&user=u&pass=***"
    )
    assert redact_url(f"bad 'tg://proxy?server=a&secret={SECRET}' here") == (
        "bad 'tg://proxy?server=a&secret=***' here"
    )
    assert redact_url("tg://socks?server=a&port=1&pass=") == "tg://socks?server=a&port=1&pass="
    assert collect_secrets({"proxy": [link(user="u", **{"pass": "p%40ss"})]}) == {"p%40ss", "p@ss"}
    assert has_url_password(link(user="u", **{"pass": "x"}))
    assert not has_url_password(link())
