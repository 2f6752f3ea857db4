"""A minimal Telethon bot whose MTProto connections go through the proxy route in ``bot.yaml``.

    pip install -e '.[telethon]'  # from a checkout; once published: 'botsession[telethon]'
    export API_ID=12345 API_HASH=0123456789abcdef0123456789abcdef  # my.telegram.org
    export BOT_TOKEN=123456:your-token-here
    python telethon_bot.py            # answers /start until Ctrl+C
    python telethon_bot.py --check    # prints who the bot is, through the route, and exits

The route is read from the file named by ``BOT_CONFIG``, else ``bot.yaml`` in the working
directory, else ``bot.yaml`` beside this script; and from ``.env`` and ``BOT_…`` variables, as
``botsession.load_config`` describes. With none of them the bot says so and exits: it would
otherwise connect directly, which is what a proxy route is there to avoid.

The bot's login is kept in ``telethon_bot.session`` in the working directory. When Telegram
cannot be reached through the route, the bot prints each route's state, naming the hop that
failed, and exits with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from telethon import TelegramClient, events

from botsession import ConfigError, load_config, route_status, telethon_connection

HERE = Path(__file__).resolve().parent
SESSION = "telethon_bot"
"""The session file's name (``.session`` added), in the working directory."""
NO_CONFIGURATION = (
    "no botsession configuration: write the route in bot.yaml (in the working directory or "
    "beside this script), name the file with BOT_CONFIG, or set BOT_PROXY"
)
NO_APPLICATION = (
    "set API_ID and API_HASH to your application's api_id and api_hash (my.telegram.org)"
)


async def start(event: events.NewMessage.Event) -> None:
    await event.respond("Hello! This answer went through the proxy route.")


async def main(check: bool, config_path: Path | None) -> None:
    config = load_config(config_path)
    print(f"route: {config.proxy or 'direct'}")  # passwords show as ***
    client = TelegramClient(
        SESSION,
        int(os.environ["API_ID"]),
        os.environ["API_HASH"],
        connection=telethon_connection(config),
    )
    try:
        try:
            await client.start(bot_token=os.environ["BOT_TOKEN"])
        except ConnectionError:
            # Telethon's own "Connection to Telegram failed 6 time(s)" does not say why (it
            # logged each attempt's error); the routes do.
            raise SystemExit(unreachable(client)) from None
        if check:
            me = await client.get_me()
            print(f"bot: @{me.username} (id {me.id})")
            return
        client.add_event_handler(start, events.NewMessage(pattern="/start"))
        await client.run_until_disconnected()
    finally:
        await client.disconnect()


def unreachable(client: TelegramClient) -> str:
    """What went wrong: each route's state and last error, naming the hop."""
    statuses = [f"  {status}" for status in route_status(client)]
    return "\n".join(["could not connect to Telegram through the route:", *statuses])


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
    if not os.environ.get("API_ID", "").isdigit() or not os.environ.get("API_HASH"):
        sys.exit(NO_APPLICATION)
    config = config_file()
    if config is None and not configured_elsewhere():
        sys.exit(NO_CONFIGURATION)
    logging.basicConfig(level=logging.INFO)
    try:
        asyncio.run(main(arguments.check, config))
    except ConfigError as error:  # lists every problem in bot.yaml / BOT_… at once
        sys.exit(str(error))
    except KeyboardInterrupt:  # Ctrl+C: the client has disconnected
        pass
