"""A minimal aiogram bot whose every request goes through the proxy route in ``bot.yaml``.

    pip install -e '.[aiogram]'  # from a checkout; once published: 'botsession[aiogram]'
    export BOT_TOKEN=123456:your-token-here
    python aiogram_bot.py            # answers /start until Ctrl+C
    python aiogram_bot.py --check    # prints who the bot is, through the route, and exits

The route is read from the file named by ``BOT_CONFIG``, else ``bot.yaml`` in the working
directory, else ``bot.yaml`` beside this script; and from ``.env`` and ``BOT_…`` variables, as
``botsession.load_config`` describes. With none of them the bot says so and exits: it would
otherwise connect directly, which is what a proxy route is there to avoid.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from aiogram import Bot, Dispatcher
from aiogram.filters import CommandStart
from aiogram.types import Message

from botsession import ConfigError, build_session_from_config

HERE = Path(__file__).resolve().parent
NO_CONFIGURATION = (
    "no botsession configuration: write the route in bot.yaml (in the working directory or "
    "beside this script), name the file with BOT_CONFIG, or set BOT_PROXY"
)

dispatcher = Dispatcher()


@dispatcher.message(CommandStart())
async def start(message: Message) -> None:
    await message.answer("Hello! This answer went through the proxy route.")


async def main(check: bool, config: Path | None) -> None:
    session = build_session_from_config(config)
    print(f"route: {session.proxy or 'direct'}")  # passwords show as ***
    bot = Bot(os.environ["BOT_TOKEN"], session=session)
    if check:
        async with bot:  # closes the session afterwards
            me = await bot.get_me()
        print(f"bot: @{me.username} (id {me.id})")
        return
    await dispatcher.start_polling(bot)  # stops on Ctrl+C / SIGTERM


def config_file() -> Path | None:
    """$BOT_CONFIG, else bot.yaml in the working directory, else bot.yaml beside this script."""
    named = os.environ.get("BOT_CONFIG")
    if named:
        return Path(named)
    for folder in (Path.cwd(), HERE):
        if (folder / "bot.yaml").is_file():
            return folder / "bot.yaml"
    return None


def configured_elsewhere() -> bool:
    """Whether a .env file or a BOT_… variable (other than the token) may hold settings."""
    variables = [name for name in os.environ if name.upper().startswith("BOT_")]
    return Path(".env").is_file() or any(name != "BOT_TOKEN" for name in variables)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="print the bot and exit")
    arguments = parser.parse_args()
    if not os.environ.get("BOT_TOKEN"):
        sys.exit("set BOT_TOKEN to your bot's token")
    config = config_file()
    if config is None and not configured_elsewhere():
        sys.exit(NO_CONFIGURATION)
    logging.basicConfig(level=logging.INFO)
    try:
        asyncio.run(main(arguments.check, config))
    except ConfigError as error:  # lists every problem in bot.yaml / BOT_… at once
        sys.exit(str(error))
