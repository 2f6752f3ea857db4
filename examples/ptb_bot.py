"""A minimal python-telegram-bot bot whose every request goes through the route in ``bot.yaml``.

    pip install -e '.[ptb]'   # from a checkout (once published: pip install 'botsession[ptb]')
    export BOT_TOKEN=123456:your-token-here
    python ptb_bot.py            # answers /start until Ctrl+C
    python ptb_bot.py --check    # prints who the bot is, through the route, and exits

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

from telegram import Bot, Update
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from botsession import ConfigError, load_config
from botsession.ptb import configure_application

HERE = Path(__file__).resolve().parent
NO_CONFIGURATION = (
    "no botsession configuration: write the route in bot.yaml (in the working directory or "
    "beside this script), name the file with BOT_CONFIG, or set BOT_PROXY"
)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.message is not None:
        await update.message.reply_text("Hello! This answer went through the proxy route.")


async def check(bot: Bot) -> None:
    async with bot:  # initialize() fetches the bot through the route
        me = bot.bot
    print(f"bot: @{me.username} (id {me.id})")


def main(check_only: bool, config_path: Path | None) -> None:
    config = load_config(config_path)
    print(f"route: {config.proxy or 'direct'}")  # passwords show as ***
    # The requests (one for getUpdates, one for the rest), base_url, base_file_url and
    # local_mode all come from the configuration.
    builder = ApplicationBuilder().token(os.environ["BOT_TOKEN"])
    application = configure_application(builder, config).build()
    if check_only:
        asyncio.run(check(application.bot))
        return
    application.add_handler(CommandHandler("start", start))
    application.run_polling()  # stops on Ctrl+C / SIGTERM


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
        main(arguments.check, config)
    except ConfigError as error:  # lists every problem in bot.yaml / BOT_… at once
        sys.exit(str(error))
