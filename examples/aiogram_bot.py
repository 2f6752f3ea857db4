"""A minimal aiogram bot whose every request goes through the proxy route in ``bot.yaml``.

    pip install 'botsession[aiogram]'
    export BOT_TOKEN=123456:your-token-here
    python aiogram_bot.py            # answers /start until Ctrl+C
    python aiogram_bot.py --check    # prints who the bot is, through the route, and exits

The route is read from ``./bot.yaml`` (or the file named by ``BOT_CONFIG``), ``.env`` and
``BOT_…`` variables, as ``botsession.load_config`` describes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from aiogram import Bot, Dispatcher
from aiogram.filters import CommandStart
from aiogram.types import Message

from botsession import ConfigError, build_session_from_config

dispatcher = Dispatcher()


@dispatcher.message(CommandStart())
async def start(message: Message) -> None:
    await message.answer("Hello! This answer went through the proxy route.")


async def main(check: bool) -> None:
    session = build_session_from_config()
    print(f"route: {session.proxy or 'direct'}")  # passwords show as ***
    bot = Bot(os.environ["BOT_TOKEN"], session=session)
    if check:
        async with bot:  # closes the session afterwards
            me = await bot.get_me()
        print(f"bot: @{me.username} (id {me.id})")
        return
    await dispatcher.start_polling(bot)  # stops on Ctrl+C / SIGTERM


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="print the bot and exit")
    arguments = parser.parse_args()
    if not os.environ.get("BOT_TOKEN"):
        sys.exit("set BOT_TOKEN to your bot's token")
    logging.basicConfig(level=logging.INFO)
    try:
        asyncio.run(main(arguments.check))
    except ConfigError as error:  # lists every problem in bot.yaml / BOT_… at once
        sys.exit(str(error))
