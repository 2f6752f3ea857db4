"""A minimal python-telegram-bot bot whose every request goes through the route in ``bot.yaml``.

    pip install 'botsession[ptb]'
    export BOT_TOKEN=123456:your-token-here
    python ptb_bot.py            # answers /start until Ctrl+C
    python ptb_bot.py --check    # prints who the bot is, through the route, and exits

The route is read from ``./bot.yaml`` (or the file named by ``BOT_CONFIG``), ``.env`` and
``BOT_…`` variables, as ``botsession.load_config`` describes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, CommandHandler, ContextTypes

from botsession import ConfigError, load_config
from botsession.ptb import configure_application


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.message is not None:
        await update.message.reply_text("Hello! This answer went through the proxy route.")


async def check(application: Application) -> None:
    async with application:  # initialize() fetches the bot through the route
        me = application.bot.bot
    print(f"bot: @{me.username} (id {me.id})")


def main(check_only: bool) -> None:
    config = load_config()
    print(f"route: {config.proxy or 'direct'}")  # passwords show as ***
    # The requests (one for getUpdates, one for the rest), base_url, base_file_url and
    # local_mode all come from the configuration.
    builder = ApplicationBuilder().token(os.environ["BOT_TOKEN"])
    application = configure_application(builder, config).build()
    if check_only:
        asyncio.run(check(application))
        return
    application.add_handler(CommandHandler("start", start))
    application.run_polling()  # stops on Ctrl+C / SIGTERM


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="print the bot and exit")
    arguments = parser.parse_args()
    if not os.environ.get("BOT_TOKEN"):
        sys.exit("set BOT_TOKEN to your bot's token")
    logging.basicConfig(level=logging.INFO)
    try:
        main(arguments.check)
    except ConfigError as error:  # lists every problem in bot.yaml / BOT_… at once
        sys.exit(str(error))
