"""Tracebacks recorded with their local variables, as Sentry or rich record them, hold no password.

The sentinel password reaches botsession from the environment, files and keyword arguments; the
test's own frames never hold it in a local variable, so anything found came from the library.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError

from botsession import (
    AiohttpSession,
    BotSessionError,
    ConfigError,
    ProxyHopError,
    build_client_session,
    build_session_from_config,
    load_config,
)
from botsession.cli import main as cli_main

from .conftest import ProxyFactory
from .servers import BotApiStandIn
from .support import SENTINEL, TOKEN, forms_of_the_secret, leaks, traceback_texts


def assert_no_secret_in_traceback(error: BaseException) -> None:
    """Neither the formatted traceback with locals nor any local of any frame shows the secret."""
    found = leaks(traceback_texts(error))
    assert not found, f"the sentinel in {found[0][:300]}"


def secret_url(scheme: str, port: int, user: str = "u") -> str:
    return f"{scheme}://{user}:{quote(SENTINEL, safe='')}@127.0.0.1:{port}"


def test_config_errors_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad configuration whose password comes from BOT_ variables."""
    monkeypatch.setenv("BOT_PROXY", secret_url("socks5", 1080))
    monkeypatch.setenv("BOT_LIMIT", "many")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert_no_secret_in_traceback(caught.value)


def test_config_errors_from_a_yaml_file_and_a_password_file(tmp_path: Path) -> None:
    """A bad configuration whose passwords come from bot.yaml and a password_file."""
    (tmp_path / "secret").write_text(SENTINEL)
    (tmp_path / "bot.yaml").write_text(
        f"proxy:\n  - {secret_url('socks5', 1)}\n"
        "  - url: http://v@127.0.0.1:2\n    password_file: secret\n"
        "limit: many\n"
    )
    for build in (load_config, build_session_from_config, build_client_session):
        with pytest.raises(ConfigError) as caught:
            build(tmp_path / "bot.yaml")
        assert_no_secret_in_traceback(caught.value)


def test_config_errors_from_keyword_arguments() -> None:
    """A bad keyword configuration, through every public entry point that validates it."""
    with pytest.raises(ConfigError) as caught:
        load_config(proxy=secret_url("socks5", 1), limit=0)
    assert_no_secret_in_traceback(caught.value)
    with pytest.raises(ConfigError) as caught:
        build_session_from_config(proxy=secret_url("socks9", 1))
    assert_no_secret_in_traceback(caught.value)
    with pytest.raises(ConfigError) as caught:
        AiohttpSession(proxy=secret_url("socks5", 1), limit=0)
    assert_no_secret_in_traceback(caught.value)
    session = AiohttpSession()
    with pytest.raises(ConfigError) as caught:
        session.proxy = secret_url("socks5", 0)
    assert_no_secret_in_traceback(caught.value)


@pytest.mark.parametrize("scheme", ["socks5", "http"])
async def test_rejected_credentials_at_runtime(
    scheme: str, bot_api: BotApiStandIn, proxy: ProxyFactory
) -> None:
    """A proxy that refuses the sentinel password: the error names the hop, its traceback and
    cause chain hold the password nowhere, for plain aiohttp and for aiogram."""
    guarded = proxy(scheme, "u", "the-right-one")
    async with build_client_session(
        proxy=secret_url(scheme, guarded.port), api={"base": bot_api.base}
    ) as client:
        with pytest.raises(ProxyHopError) as caught:
            await client.get(f"{bot_api.base}/bot{TOKEN}/getMe")
    assert caught.value.reason == "auth"
    assert_no_secret_in_traceback(caught.value)
    session = build_session_from_config(
        proxy=secret_url(scheme, guarded.port), api={"base": bot_api.base}
    )
    with pytest.raises(TelegramNetworkError) as network_error:
        async with Bot(TOKEN, session=session) as bot:
            await bot.get_me()
    assert "proxy hop 1 of 1" in str(network_error.value)
    assert_no_secret_in_traceback(network_error.value)


async def test_a_broken_second_hop_at_runtime(bot_api: BotApiStandIn, proxy: ProxyFactory) -> None:
    """Hop 1 carries the password and hop 2 answers garbage: nothing leaks from either."""
    first = proxy("socks5", "u", SENTINEL).port
    wrong_kind = proxy("socks5").port
    async with build_client_session(
        proxy=[secret_url("socks5", first), secret_url("http", wrong_kind, "v")],
        api={"base": bot_api.base},
    ) as client:
        with pytest.raises(aiohttp.ClientConnectionError) as caught:
            await client.get(f"{bot_api.base}/bot{TOKEN}/getMe")
    assert isinstance(caught.value, ProxyHopError)
    assert (caught.value.hop_number, caught.value.reason) == (2, "protocol")
    assert_no_secret_in_traceback(caught.value)


def test_cli_failures_leave_no_secret_in_any_exception(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI handles every error itself: exit codes, no traceback, and no secret printed."""
    (tmp_path / "bot.yaml").write_text(f"proxy: {secret_url('socks5', 1)}\nlimit: many\n")
    assert cli_main(["check", str(tmp_path / "bot.yaml")]) == 1
    output = capsys.readouterr()
    assert "Traceback" not in output.err
    assert all(secret not in output.out + output.err for secret in forms_of_the_secret())


def test_every_library_error_is_a_botsession_error() -> None:
    """The error tree has one root."""
    assert issubclass(ConfigError, BotSessionError)
    assert issubclass(ProxyHopError, BotSessionError)
