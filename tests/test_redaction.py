"""What the one redaction module masks, pinned case by case: URL passwords (with "@" in them),
the length below which a secret is not scrubbed from free text, the ``password`` key in any case,
the order in which overlapping secrets are scrubbed, and a proxy that echoes its credentials."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from botsession import ProxyHopError, build_client_session
from botsession.redaction import MASK, collect_secrets, describe_value, redact_url, scrub

from .servers import BotApiStandIn, StreamServer
from .support import SENTINEL, forms_of_the_secret


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
