"""What the one redaction module masks, pinned case by case: URL passwords (with "@" in them),
the length below which a secret is not scrubbed from free text, the ``password`` key in any case,
the order in which overlapping secrets are scrubbed, and a proxy that echoes its credentials."""

from __future__ import annotations

import asyncio
import base64
import collections
import itertools
import logging
import sys
import traceback
from dataclasses import dataclass
from urllib.parse import quote

import pytest
import yarl

from botsession import ProxyHopError, build_client_session
from botsession.errors import RedactedError
from botsession.redaction import (
    MASK,
    Secrets,
    TokenMask,
    collect_secrets,
    describe_value,
    has_url_password,
    mask_tokens_in_log,
    redact_exception,
    redact_url,
    scrub,
    scrub_secrets,
    scrub_texts,
    secret_of_token,
)

from .servers import BotApiStandIn, StreamServer
from .support import SENTINEL, basic_auth, forms_of_the_secret


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("socks5://u:p@ss@10.0.0.1:1080", True, "socks5://u:***@10.0.0.1:1080"),
        ("see socks5://u:p@ss@10.0.0.1:1080 now", False, "see socks5://u:***@10.0.0.1:1080 now"),
        ("http://u:a@b@c@proxy:3128/x", True, "http://u:***@proxy:3128/x"),
        ("socks5://u:pw@10.0.0.1:1080", True, "socks5://u:***@10.0.0.1:1080"),
    ],
)
def test_a_password_holding_at_signs_is_masked_up_to_the_last_one(
    text: str, value: bool, expected: str
) -> None:
    """Everything from the password's start to the last "@" is masked, "@"s inside included."""
    assert redact_url(text, value=value) == expected


@pytest.mark.parametrize("secret", ["abcd", "abcdefg", "abcdefgh"])
def test_secrets_of_four_characters_or_more_are_scrubbed_from_text(secret: str) -> None:
    """A known secret of 4 characters or more is scrubbed wherever it appears in a message."""
    assert scrub(f"x {secret} y {secret}", {secret}) == f"x {MASK} y {MASK}"


def test_shorter_secrets_are_left_to_structural_masking() -> None:
    """A secret of 3 characters is not scrubbed from free text (it would garble words), but
    masked where its place is known: in a URL's userinfo."""
    assert scrub("the pwd is in a pwd", {"pwd"}) == "the pwd is in a pwd"
    assert scrub("socks5://u:pwd@h:1 failed", {"pwd"}) == "socks5://u:***@h:1 failed"


def test_the_longer_of_two_overlapping_secrets_is_scrubbed_first() -> None:
    """When one secret contains another, the whole longer one disappears, not just its part."""
    assert scrub("x abcdefgh y abcd", {"abcd", "abcdefgh"}) == "x *** y ***"
    assert scrub("x abcdefgh", {"abcdefgh", "abcd"}) == "x ***"


@pytest.mark.parametrize("key", ["password", "Password", "PASSWORD"])
def test_a_password_key_is_secret_in_any_case(key: str) -> None:
    """A value at a ``password`` key, whatever its case, is shown as *** and known as a secret."""
    assert describe_value(("proxy", key), SENTINEL) == MASK
    assert collect_secrets({"proxy": {"url": "socks5://h:1", key: SENTINEL}}) == {SENTINEL}


def test_a_non_secret_key_is_described_by_its_value() -> None:
    """Other values are shown (quoted, URL passwords masked)."""
    assert describe_value(("proxy", "username"), "bob") == "'bob'"
    assert describe_value(("proxy", "url"), "socks5://u:pw@h:1") == "'socks5://u:***@h:1'"


@dataclass
class EchoingProxy(StreamServer):
    """An HTTP proxy that refuses CONNECT with a reply quoting the credentials it was sent:
    decoded (``decoded``) or as the header value (base64)."""

    decoded: bool = True

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        credentials = b"none"
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"proxy-authorization: basic "):
                credentials = line.split(b" ", 2)[2]
        if self.decoded:
            credentials = base64.b64decode(credentials)
        writer.write(b"HTTP/1.1 407 Wrong credentials " + credentials + b"\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.mark.parametrize("decoded", [True, False], ids=["plain", "base64"])
async def test_a_proxy_echoing_the_credentials_does_not_make_them_shown(
    decoded: bool, background: object, bot_api: BotApiStandIn
) -> None:
    """A proxy whose refusal quotes the password (plain or in Basic credentials) has it masked
    in the ProxyHopError and in route_status."""
    proxy = EchoingProxy(background, decoded=decoded).start()  # type: ignore[arg-type]
    try:
        url = f"http://u:{quote(SENTINEL, safe='')}@127.0.0.1:{proxy.port}"
        async with build_client_session(proxy=url, api={"base": bot_api.base}) as session:
            with pytest.raises(ProxyHopError) as caught:
                await session.get(f"{bot_api.base}/bot42:x/getMe")
            statuses = session.connector.route_status()  # type: ignore[union-attr]
    finally:
        proxy.stop()
    error = caught.value
    assert error.reason == "auth"
    assert error.code == 407
    assert "Wrong credentials" in str(error)
    shown = [str(error), repr(error), error.detail, *(str(status) for status in statuses)]
    assert not [text for text in shown if any(form in text for form in forms_of_the_secret())]


# --- pinned by mutation testing (each case kills a mutant that survived the suite) -----------

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        # a user name with a space is one only in a raw value
        ("socks5://u v:pw@127.0.0.1:1080", True, "socks5://u v:***@127.0.0.1:1080"),
        ("use http:// or https: and mail a@b", False, "use http:// or https: and mail a@b"),
        # the first password of the text is where masking starts, later URLs included
        ("http://a:p1@h1 http://c:p2@h2", False, "http://a:***@h2"),
        ("socks5://u:p://x@h:1", True, "socks5://u:***@h:1"),
        ("socks5://u:p:w@h:1", True, "socks5://u:***@h:1"),
        # a URL without a password does not stop the search for one
        ("from http://user@h1 to http://u:pw@h2", False, "from http://user@h1 to http://u:***@h2"),
        ("a://x@h b://u:p1@h c://v:p2@h", False, "a://x@h b://u:***@h"),
        ("http://user@h/x?u=http://y", False, "http://user@h/x?u=http://y"),
        ("http://user@", True, "http://user@"),
        ("http://user@h:1/x", True, "http://user@h:1/x"),
        # an empty user name, and schemes of one letter or with digits
        ("socks5://:pw@h:1", True, "socks5://:***@h:1"),
        ("via s://u:pw@h now", False, "via s://u:***@h now"),
        ("s5://u:pw@h", True, "s5://u:***@h"),
        ("1a2://u:pw@h", True, "1a2://u:***@h"),
        # a scheme starts with a letter: digits before "://" are not one
        ("1://u:pw@h", True, "1://u:pw@h"),
        ("12://u:pw@h", True, "12://u:pw@h"),
        ("a/5://u:pw@h", True, "a/5://u:pw@h"),
    ],
)
def test_where_a_url_password_starts_and_ends(text: str, value: bool, expected: str) -> None:
    """The masked stretch runs from the first ``scheme://user:`` password to the last "@"."""
    assert redact_url(text, value=value) == expected


LINK = "https://t.me/socks?server=127.0.0.1&port=1080&user=u"


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        (f"{LINK}&pass=pw 'and' more", False, f"{LINK}&pass=*** 'and' more"),
        (f"{LINK}&pass=p w", True, f"{LINK}&pass=***"),
        (f"{LINK}&pass=&x=1", False, f"{LINK}&pass=&x=1"),
        (f"{LINK}&PASS=pw#x", True, f"{LINK}&PASS=***#x"),
        (
            "tg://proxy?server=h&port=1&secret=ee00ff",
            False,
            "tg://proxy?server=h&port=1&secret=***",
        ),
    ],
)
def test_a_proxy_link_loses_its_pass_and_secret(text: str, value: bool, expected: str) -> None:
    """A link's non-empty ``pass=``/``secret=`` value is masked up to the next parameter (in free
    text also up to whitespace or a quote); the parameter's name stays."""
    assert redact_url(text, value=value) == expected
    assert redact_url(text) == redact_url(text, value=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("socks5://u:pw@h:1", True),
        ("socks5://u v:pw@h:1", True),
        ("socks5://u@h:1", False),
        (f"{LINK}&pass=pw", True),
        (f"{LINK}&Pass=pw", True),
        (f"{LINK}&pass=", False),
        ("tg://proxy?server=h&port=1&secret=ee00ff", False),
        ("socks5://h:1?x=1", False),
        ("plain", False),
    ],
)
def test_which_values_hold_a_url_password(text: str, expected: bool) -> None:
    """A value holds a password when its userinfo has one or its proxy link a non-empty
    ``pass=``; an MTProto ``secret=`` is not a password."""
    assert has_url_password(text) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{LINK}&pass=pw12&secret=s3cr", {"pw12", "s3cr"}),
        (f"{LINK}&pass=&secret=", set()),
        ("socks5://u:p%40ss@h:1", {"p%40ss", "p@ss"}),
        ("socks5://a:pw1@h1:1 socks5://b:pw2@h2:1", {"pw1@h1:1 socks5://b:pw2", "pw1", "pw2"}),
        ("socks5://u v:pw@h:1", {"pw"}),
    ],
)
def test_the_secrets_collected_from_a_raw_value(value: str, expected: set[str]) -> None:
    """Link secrets, the whole password span and each URL's own password are all known secrets
    (percent-decoded too), so that each is scrubbed wherever a message quotes it."""
    assert collect_secrets(value) == expected


def nested(value: object, depth: int, *, mapping: bool) -> object:
    for _ in range(depth):
        value = {"hop": value} if mapping else [value]
    return value


@pytest.mark.parametrize("mapping", [False, True], ids=["lists", "mappings"])
def test_secrets_are_collected_twenty_levels_deep_and_no_deeper(mapping: bool) -> None:
    """A password 20 levels down in lists or mappings is found; a deeper structure is not a
    configuration and is not walked."""
    url = "socks5://u:pw@h:1"
    assert collect_secrets(nested(url, 20, mapping=mapping)) == {"pw"}
    assert collect_secrets(nested(url, 21, mapping=mapping)) == set()


def test_values_that_are_not_text_hold_no_secret() -> None:
    """Numbers, None and bytes in a raw configuration are passed over, not walked."""
    raw = {"url": "socks5://u:pw@h:1", "port": 1080, "tls": None, "raw": b"socks5://u:x@h:1"}
    assert collect_secrets({"proxy": raw}) == {"pw"}


def test_a_basic_auth_password_is_a_secret() -> None:
    """aiohttp's BasicAuth (aiogram's proxy form) gives its password, not its login."""
    assert collect_secrets([("socks5://h:1", basic_auth("u", "pw12"))]) == {"pw12"}


def test_collecting_secrets_does_not_need_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without aiohttp imported (an application that only loads a configuration) secrets are
    still collected, and aiohttp is not imported for it."""
    monkeypatch.delitem(sys.modules, "aiohttp")
    assert collect_secrets([["socks5://u:pw@h:1", ("socks5://h:2", "pw2")]]) == {"pw"}
    assert "aiohttp" not in sys.modules


@pytest.mark.parametrize(
    ("token", "expected"),
    [("123:abc", {"abc"}), ("123:abc:def", {"abc:def"}), ("nocolon", {"nocolon"})],
)
def test_the_secret_of_a_bot_token(token: str, expected: set[str]) -> None:
    """What follows the first colon is the token's secret; a token without one is all secret."""
    assert secret_of_token(token) == expected


def test_kept_secrets_are_counted_not_shown() -> None:
    """``Secrets`` gives back its values when iterated, and its repr only counts them."""
    kept = Secrets(["abcd", "efgh", "abcd"])
    assert sorted(kept) == ["abcd", "efgh"]
    assert repr(kept) == "<2 secrets>"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("proxy", "url"), "socks5://u v:pw@h:1", "'socks5://u v:***@h:1'"),
        (("proxy",), {"b": 1, "a": 2}, "a mapping with keys a, b"),
        (("proxy",), [1, 2, 3], "a list of 3 items"),
        (("proxy",), ("x",), "a list of 1 items"),
        (("port",), 5, "5"),
        (("port",), 1.5, "1.5"),
        (("port",), True, "True"),
        (("port",), 2**1000, "an integer of about 301 digits"),
        pytest.param(("port",), 10**5000, "an integer of about 5000 digits", id="10**5000"),
        (("port",), 2**999, repr(2**999)[:117] + "..."),
        (("proxy",), {"socks5://u v:pw@h:1"}, "{'socks5://u v:***@h:1'}"),
        (("proxy",), {"x" * 116}, "{'" + "x" * 116 + "'}"),
        (("proxy",), {"x" * 117}, "{'" + "x" * 115 + "..."),
        (("proxy",), "x" * 120, repr("x" * 120)),
        (("proxy",), "x" * 121, repr("x" * 117 + "...")),
    ],
)
def test_how_a_value_is_described(path: tuple[str, ...], value: object, expected: str) -> None:
    """Values are shown briefly: text quoted, containers by their size or keys, huge integers by
    their length, anything longer than 120 characters cut with "..."; URL passwords masked."""
    assert describe_value(path, value) == expected


def test_the_longest_secret_is_scrubbed_first_whatever_its_letters() -> None:
    """Of two overlapping secrets the longer one is scrubbed whole, also when the shorter one
    sorts after it alphabetically."""
    secrets = {"bcde", "abcdef"}
    assert scrub("x abcdef", secrets) == "x ***"
    assert scrub_secrets("x abcdef", secrets) == "x ***"
    assert scrub_texts(["x abcdef"], secrets) == ["x ***"]


def test_scrubbing_known_secrets_also_masks_bot_tokens() -> None:
    """``scrub_secrets`` masks the bot token of a Bot API URL without being told the token."""
    assert scrub_secrets("GET /bot42:abcdefgh/getMe", set()) == "GET /bot42:***/getMe"


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        ([], []),
        (["abcd"], ["***"]),
        (["x abcd"], ["x ***"]),
        (["abcd 1", "x", "abcd 2"], ["*** 1", "x", "*** 2"]),
        (["abcd", "abcd", "abcd"], ["***", "***", "***"]),
        (["a", "b", "c", "d", "x abcd", "y"], ["a", "b", "c", "d", "x ***", "y"]),
        (["x", "y", "abcd"], ["x", "y", "***"]),
        (["abcd x", "y"], ["*** x", "y"]),
        (["x abcdefghij y"], ["x *** y"]),
        (["socks5://u:pw@h:1 failed"], ["socks5://u:***@h:1 failed"]),
    ],
)
def test_every_text_loses_every_secret_it_holds(texts: list[str], expected: list[str]) -> None:
    """``scrub_texts`` masks each known secret in whichever of the texts holds it, at the start,
    the end, or as the whole text, and URL passwords besides."""
    assert scrub_texts(texts, {"abcd", "abcdefghij", "zzzzzz"}) == expected


def test_scrubbing_many_texts_stops_only_past_the_work_limit() -> None:
    """Secrets times characters up to 100,000,000 are scrubbed; one secret more and no text may
    be shown (None)."""
    text = "".join(map(chr, range(0x10000, 0x10000 + 100_000)))
    secrets = {text[i : i + 4] for i in range(0, 4000, 4)}
    assert len(secrets) * len(text) == 100_000_000
    assert scrub_texts([text], secrets) == [MASK * 1000 + text[4000:]]
    assert scrub_texts([text], secrets | {text[4000:4004]}) is None


def test_only_secrets_whose_sampled_pieces_occur_count_towards_the_work_limit() -> None:
    """A secret is looked for only when its first, last and six evenly spaced 4-character pieces
    all occur in the texts: 10,001 secrets of 61 or 67 characters in a text of 10,000 are too
    many only when every such piece of each occurs."""
    text = "".join(map(chr, range(0x10000, 0x10000 + 10_000)))
    pairs = [(i % 9000, 9500 + 100 * (i // 9000)) for i in range(10_001)]
    # the last piece holds a character the text lacks
    last_missing = {text[a : a + 60] + "!" for a in range(9001)}
    last_missing |= {text[a : a + 61] + "!" for a in range(1000)}
    # the pieces at 0, 9, 18, ... 63 occur; the one across the seam at 9 does not
    seam_unsampled = {text[a : a + 9] + text[b : b + 58] for a, b in pairs}
    # the piece at 18 crosses the seam at 20
    seam_sampled = {text[a : a + 20] + text[b : b + 47] for a, b in pairs}
    assert scrub_texts([text], last_missing) == [text]
    assert scrub_texts([text], seam_unsampled) is None
    assert scrub_texts([text], seam_sampled) == [text]


def test_a_log_record_shows_bot_tokens_masked() -> None:
    """The token mask rewrites a record's message and its text arguments (URL objects
    included); other arguments keep their type, so ``%d`` still formats."""
    url = yarl.URL("http://127.0.0.1:1/bot42:abcdefgh/getMe")
    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "GET /bot42:abcdefgh/a %s %s %s %d",
        (str(url), url, "plain", 5),
        None,
    )
    assert TokenMask().filter(record) is True
    masked = "http://127.0.0.1:1/bot42:***/getMe"
    assert record.getMessage() == f"GET /bot42:***/a {masked} {masked} plain 5"
    assert record.args is not None
    assert record.args[2:] == ("plain", 5)


def test_the_token_mask_is_put_on_a_logger_once() -> None:
    """``mask_tokens_in_log`` adds the one token mask to each named logger, and only once."""
    name = "botsession.tests.token-mask"
    named = logging.getLogger(name)
    try:
        mask_tokens_in_log(name)
        mask_tokens_in_log(name, name)
        assert [type(f) for f in named.filters] == [TokenMask]
        record = named.makeRecord(name, logging.INFO, __file__, 1, "/bot42:abcdefgh/x", (), None)
        assert named.filter(record)
        assert record.getMessage() == "/bot42:***/x"
    finally:
        for found in list(named.filters):
            named.removeFilter(found)


def test_a_token_seen_in_one_url_is_scrubbed_from_every_text_of_the_chain() -> None:
    """The secret of a token in a Bot API URL anywhere in the chain (a note included) is
    scrubbed where it appears on its own in another exception's text."""
    error = ValueError("request failed")
    error.add_note("GET http://127.0.0.1:1/bot42:abcdefgh")
    error.add_note("see the log")
    cause = OSError("the secret abcdefgh again")
    error.__cause__ = cause
    redact_exception(error)
    assert error.__notes__ == ["GET http://127.0.0.1:1/bot42:***", "see the log"]
    assert error.__cause__ is cause
    assert str(cause) == "the secret *** again"


def test_a_clean_chain_is_left_as_it_was() -> None:
    """Chained exceptions that show no secret stay the very same objects, cause and context."""
    cause, context = OSError("cause"), KeyError("context")
    error = ValueError(f"with {SECRET}")
    error.__cause__, error.__context__ = cause, context
    redact_exception(error, {SECRET})
    assert str(error) == "with ***"
    assert error.__cause__ is cause
    assert error.__context__ is context


def test_every_exception_of_a_group_and_its_cause_is_scrubbed() -> None:
    """The members of an exception group, and the group's cause, all lose the secret, also
    when a member is the group's context as well (raised while handling it)."""
    first, second, cause = ValueError(f"a {SECRET}"), OSError(f"b {SECRET}"), KeyError(SECRET)
    group = ExceptionGroup("several", [first, second])
    group.__cause__, group.__context__ = cause, second
    redact_exception(group, {SECRET})
    assert (str(first), str(second), str(cause)) == ("a ***", "b ***", "'***'")
    assert group.__cause__ is cause
    assert group.__context__ is second


def test_a_cycle_of_exceptions_is_scrubbed_once() -> None:
    """Exceptions that are each other's context are each scrubbed, and redaction ends."""
    first, second = ValueError(f"a {SECRET}"), OSError(f"b {SECRET}")
    first.__context__, second.__context__ = second, first
    redact_exception(first, {SECRET})
    assert (str(first), str(second)) == ("a ***", "b ***")
    assert first.__context__ is second


def test_every_exception_of_a_long_chain_is_scrubbed() -> None:
    """Every exception of a chain hundreds long is scrubbed in place, and its formatted
    traceback shows no secret."""
    chain = [ValueError(f"{n} {SECRET}") for n in range(300)]
    for error, cause in itertools.pairwise(chain):
        error.__cause__ = cause
    redact_exception(chain[0], {SECRET})
    assert [str(error) for error in chain] == [f"{n} ***" for n in range(300)]
    assert SECRET not in "".join(traceback.format_exception(chain[0]))


def test_every_member_of_a_large_group_is_scrubbed() -> None:
    """Every member of an exception group of hundreds, and each member's cause, is scrubbed;
    the formatted group shows no secret."""
    members = [OSError(f"member {n} {SECRET}") for n in range(200)]
    for member in members:
        member.__cause__ = KeyError(SECRET)
    group = ExceptionGroup("many", members)
    redact_exception(group, {SECRET})
    assert {str(member) for member in members} == {f"member {n} ***" for n in range(200)}
    assert {str(member.__cause__) for member in members} == {"'***'"}
    shown = traceback.TracebackException.from_exception(group, max_group_width=1000)
    everything = "".join(shown.format())
    assert SECRET not in everything
    assert "member 199 ***" in everything


def test_a_stand_in_keeps_the_chain_of_the_exception_it_replaces() -> None:
    """A RedactedError standing in for an exception that cannot be cleaned has its cause, its
    context and whether the context is suppressed."""
    cause, context = OSError("cause"), KeyError("context")
    unclean = Unclean(f"failed with {SECRET}")
    unclean.__cause__, unclean.__context__ = cause, context
    error = RuntimeError("outer")
    error.__context__ = unclean
    redact_exception(error, {SECRET})
    stand_in = error.__context__
    assert isinstance(stand_in, RedactedError)
    assert str(stand_in) == f"{__name__}.Unclean: failed with ***"
    assert stand_in.__cause__ is cause
    assert stand_in.__context__ is context
    assert stand_in.__suppress_context__ is True


def test_a_four_character_secret_is_enough_to_replace_an_unclean_exception() -> None:
    """A chained exception that cannot be cleaned of a 4-character secret is replaced."""
    error = RuntimeError("outer")
    error.__cause__ = Unclean("pw12 here")
    redact_exception(error, {"pw12"})
    assert str(error.__cause__) == f"{__name__}.Unclean: *** here"


class Unclean(Exception):
    """An exception whose text comes from state redaction cannot reach."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = lambda: text

    def __str__(self) -> str:
        return self._text()


class ReadOnlyUrl(Exception):
    """An exception with a read-only attribute that shadows a value in its ``__dict__``."""

    @property
    def url(self) -> str:
        return "http://127.0.0.1:1/"


def test_a_read_only_attribute_does_not_stop_scrubbing_the_others() -> None:
    """Attributes after one that cannot be set are still scrubbed."""
    error = ReadOnlyUrl()
    error.__dict__["url"] = f"http://127.0.0.1:1/{SECRET}"
    error.detail = f"detail {SECRET}"  # type: ignore[attr-defined]
    redact_exception(error, {SECRET})
    assert error.detail == "detail ***"  # type: ignore[attr-defined]


Pair = collections.namedtuple("Pair", ["url", "note"])


def test_arguments_keep_their_type_when_scrubbed() -> None:
    """Tuples, lists, named tuples and URL objects in an exception's arguments and attributes
    are copied with the secret masked, each as its own type."""
    url = yarl.URL(f"http://127.0.0.1:1/{SECRET}/x")
    error = ValueError((f"a {SECRET}", 1), [f"b {SECRET}"], Pair(f"c {SECRET}", None), url)
    error.pair = Pair("plain", f"d {SECRET}")  # type: ignore[attr-defined]
    redact_exception(error, {SECRET})
    assert error.args == (("a ***", 1), ["b ***"], Pair("c ***", None), url.with_path("/***/x"))
    assert [type(arg) for arg in error.args] == [tuple, list, Pair, yarl.URL]
    assert error.pair == Pair("plain", "d ***")  # type: ignore[attr-defined]


def test_nested_arguments_are_scrubbed_five_levels_deep() -> None:
    """A secret in lists nested in an argument (the arguments being the first level) or in an
    attribute is scrubbed down to the fifth level; a deeper or self-referencing value is left
    as it is."""
    loop: list[object] = []
    loop.append(loop)
    deep = nested(f"x {SECRET}", 4, mapping=False)
    deeper = nested(f"y {SECRET}", 5, mapping=False)
    error = ValueError(deep, deeper, loop)
    error.deep = nested(f"z {SECRET}", 5, mapping=False)  # type: ignore[attr-defined]
    redact_exception(error, {SECRET})
    assert error.args[:2] == (nested("x ***", 4, mapping=False), deeper)
    assert error.args[2] is loop
    assert error.deep == nested("z ***", 5, mapping=False)  # type: ignore[attr-defined]


class Stamped:
    """A value whose text always ends with a secret of its own, whatever it is made from."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return f"{self.text} (key {SECRET})"


def test_a_value_its_copy_would_not_clean_is_kept() -> None:
    """A value that a copy made from its scrubbed text would still show the secret in stays the
    very same object; the value a copy does clean is replaced."""
    stamped, url = Stamped("x"), yarl.URL(f"http://127.0.0.1:1/{SECRET}")
    error = ValueError(stamped, url)
    redact_exception(error, {SECRET})
    assert error.args[0] is stamped
    assert error.args[1] == yarl.URL("http://127.0.0.1:1/***")
