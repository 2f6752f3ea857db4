"""A stand-in Bot API server in its own process, so it does not share the clients' GIL.

Prints its port on stdout, then serves until stdin is closed. With ``--close`` it closes every
connection after its response, so that each request through a proxy needs a new tunnel. With
``--tls CERT KEY`` it serves HTTPS with that certificate chain and key (PEM files), as the real
Bot API does.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys

from aiohttp import web

from tests.support import BOT_USER

_ME = json.dumps({"ok": True, "result": BOT_USER})
_CLOSE = "--close" in sys.argv[1:]


def _tls() -> ssl.SSLContext | None:
    """The server context ``--tls CERT KEY`` asks for, or None (plain HTTP)."""
    if "--tls" not in sys.argv:
        return None
    at = sys.argv.index("--tls")
    cert, key = sys.argv[at + 1 : at + 3]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def _handle(request: web.Request) -> web.Response:
    await request.read()
    response = web.Response(text=_ME, content_type="application/json")
    if _CLOSE:
        response.force_close()
    return response


async def main() -> None:
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", _handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024, ssl_context=_tls())
    await site.start()
    print(runner.addresses[0][1], flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # returns when the parent closes stdin
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
