"""A pooled connection that its proxy has reset is never handed to a request, even before the
event loop has read the reset; a request whose bytes provably never left is sent once more."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import aiohttp
import httpx
import pytest
import telegram.error
from aiogram.exceptions import TelegramNetworkError

from botsession.errors import tell_where
from botsession.net import connector
from botsession.net.tunnel import CountingSocket, Tunnel, _dial

from .clients import Adapter, client
from .conftest import ProxyFactory
from .failover_support import SlowProxy, pump, until
from .faultproxy import FaultProxyFactory
from .servers import BackgroundLoop, BotApiStandIn
from .support import LOOPBACK, PATIENT, free_port, reset

SETTLE = 0.05
"""Long enough for the kernel to take in an RST sent on loopback (seconds): the reset is then
waiting in the socket, unread by the event loop, as when a proxy drops its tunnels."""

NETWORK_ERRORS: dict[Adapter, type[Exception]] = {
    "aiogram": TelegramNetworkError,
    "ptb": telegram.error.NetworkError,
    "httpx": httpx.TransportError,
    "aiohttp": aiohttp.ClientConnectionError,
}
"""The error each framework raises when the network fails under a request."""


@dataclass
class DroppingRelay(SlowProxy):
    """A forwarder in front of a working proxy (``SlowProxy`` without delay) that, once
    ``drop_next_request`` is set, takes the next Bot API request a client sends, passes nothing
    of it on and resets that client's connection: a proxy that dies with a request in its
    hands."""

    delay: float = 0.0
    dropped: int = 0
    drop_next_request: bool = False
    _clients: list[asyncio.StreamWriter] = field(default_factory=list)

    def reset_open(self) -> int:
        """Reset every client connection still open (on the relay's loop); returns how many."""

        async def reset_all() -> int:
            open_ones = [writer for writer in self._clients if not writer.is_closing()]
            for writer in open_ones:
                reset(writer.transport)
            return len(open_ones)

        return self.background.run(reset_all())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._clients.append(writer)
        up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.upstream)
        back = asyncio.ensure_future(pump(up_reader, writer))
        self._tasks.add(back)
        try:
            while data := await reader.read(65536):
                if self.drop_next_request and b"POST /bot" in data:
                    self.drop_next_request = False
                    self.dropped += 1
                    reset(writer.transport)
                    break
                up_writer.write(data)
                await up_writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            back.cancel()
            self._tasks.discard(back)
            up_writer.close()
            writer.close()


@pytest.mark.parametrize("adapter", get_args(Adapter))
@pytest.mark.parametrize("how", ["reset", "closed"])
async def test_request_after_the_proxy_reset_the_pooled_connection_goes_through_a_new_one(
    adapter: Adapter, how: str, bot_api: BotApiStandIn, fault_proxy: FaultProxyFactory
) -> None:
    """When the proxy resets (or closes) an idle pooled tunnel and the next request comes
    before the event loop has read that, the request goes through a new tunnel and reaches the
    server once."""
    proxy = fault_proxy("socks5")
    async with client(adapter, bot_api, proxy=proxy.url()) as used:
        await used.get_me()
        assert proxy.reset_connections(gently=how == "closed") >= 1
        time.sleep(SETTLE)  # noqa: ASYNC251 - the event loop must not run: the reset stays unread
        await used.get_me()
    assert [call.method for call in bot_api.calls] == ["getMe", "getMe"]
    assert proxy.accepted == 2  # the second request had a tunnel of its own


@pytest.mark.parametrize("adapter", get_args(Adapter))
async def test_request_whose_connection_died_before_a_byte_left_is_sent_once_more(
    adapter: Adapter,
    bot_api: BotApiStandIn,
    fault_proxy: FaultProxyFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the reset comes just after the pooled connection was looked at (the look saw
    nothing), the request fails to write before the kernel took a byte of it, and is sent
    once more on a new tunnel: it reaches the server once, and the caller sees its answer."""
    monkeypatch.setattr(connector, "_dropped", lambda transport: False)
    proxy = fault_proxy("socks5")
    async with client(adapter, bot_api, proxy=proxy.url()) as used:
        await used.get_me()
        assert proxy.reset_connections() >= 1
        time.sleep(SETTLE)  # noqa: ASYNC251 - as above
        me = await used.get_me()
    assert "bot" in str(me).lower()
    assert [call.method for call in bot_api.calls] == ["getMe", "getMe"]
    assert proxy.accepted == 2


@pytest.mark.parametrize("adapter", get_args(Adapter))
async def test_request_that_reached_the_proxy_is_never_sent_again(
    adapter: Adapter, bot_api: BotApiStandIn, background: BackgroundLoop, proxy: ProxyFactory
) -> None:
    """A request whose bytes the proxy took before it reset the tunnel (it may have passed them
    on) fails with the framework's network error and is not sent again."""
    upstream = proxy("socks5")
    relay = DroppingRelay(background, upstream.port).start()
    try:
        async with client(adapter, bot_api, proxy=relay.url()) as used:
            await used.get_me()
            relay.drop_next_request = True
            with pytest.raises(NETWORK_ERRORS[adapter]) as caught:
                await used.get_me()
        said = str(caught.value)
        assert f"on a tunnel through route proxy ({relay.url()})" in said
        assert "the request may have been sent, so it is not sent again" in said
        assert relay.dropped == 1
        assert relay.accepted == 1  # no second tunnel: nothing was sent again
        assert [call.method for call in bot_api.calls] == ["getMe"]
    finally:
        relay.stop()


@pytest.mark.parametrize("adapter", get_args(Adapter))
async def test_a_request_sent_once_more_that_fails_again_names_the_route_and_is_not_resent(
    adapter: Adapter,
    bot_api: BotApiStandIn,
    background: BackgroundLoop,
    proxy: ProxyFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request sent once more (its pooled connection died before a byte left) whose new
    tunnel the proxy then resets with the request in its hands fails with the framework's
    network error naming the route, and is not sent a third time."""
    monkeypatch.setattr(connector, "_dropped", lambda transport: False)  # the look misses it
    upstream = proxy("socks5")
    relay = DroppingRelay(background, upstream.port).start()
    try:
        async with client(adapter, bot_api, proxy=relay.url()) as used:
            await used.get_me()
            relay.drop_next_request = True
            assert relay.reset_open() == 1
            time.sleep(SETTLE)  # noqa: ASYNC251 - the event loop must not run: the reset stays unread
            with pytest.raises(NETWORK_ERRORS[adapter]) as caught:
                await used.get_me()
        said = str(caught.value)
        assert f"on a tunnel through route proxy ({relay.url()})" in said
        assert "sent once more" in said
        assert "so it is not sent again" in said
        assert relay.dropped == 1
        assert relay.accepted == 2  # the pooled tunnel, then one new tunnel: no third
        assert [call.method for call in bot_api.calls] == ["getMe"]
    finally:
        relay.stop()


def test_a_tunnel_whose_socket_never_counted_a_byte_does_not_claim_to_know() -> None:
    """Bytes sent are known only once the socket has counted some (every tunnel sends its
    handshakes through it): an event loop that writes around Python's socket methods (uvloop)
    leaves the count at 0, and then nothing is ever taken as unsent."""
    with CountingSocket() as sock:
        tunnel = Tunnel(transport=Any, stream=Any, socket=sock)  # type: ignore[arg-type]
        assert tunnel.bytes_sent() is None
        sock.sent = 3
        assert tunnel.bytes_sent() == 3
    assert Tunnel(transport=Any, stream=Any).bytes_sent() is None  # type: ignore[arg-type]


@pytest.mark.parametrize("adapter", get_args(Adapter))
@pytest.mark.parametrize("server", ["http", "https"])
async def test_an_idle_connection_that_is_alive_is_reused(  # noqa: PLR0917 - fixtures
    adapter: Adapter,
    server: str,
    bot_api: BotApiStandIn,
    tls_bot_api: BotApiStandIn,
    ca_file: Path,
    fault_proxy: FaultProxyFactory,
) -> None:
    """The look at an idle connection does not drop a live one, TLS with the server included
    (whatever TLS sends after its handshake has been read by then): requests one after the
    other share one tunnel."""
    api = tls_bot_api if server == "https" else bot_api
    proxy = fault_proxy("socks5")
    async with client(adapter, api, proxy=proxy.url(), ssl={"ca_file": str(ca_file)}) as used:
        for _ in range(3):
            await used.get_me()
            await asyncio.sleep(0.05)  # the connection is idle in the pool meanwhile
    assert [call.method for call in api.calls] == ["getMe"] * 3
    assert proxy.accepted == 1


async def test_dialling_tries_each_address_and_fails_as_asyncio_does() -> None:
    """Hop 1 is dialled at each of its addresses in turn: the first that accepts is used, and
    when none does the error is asyncio's (one error, or "Multiple exceptions: …")."""
    loop = asyncio.get_running_loop()
    closed = free_port()
    with socket.create_server((LOOPBACK, 0)) as listening:
        port = listening.getsockname()[1]

        async def addresses(host: str, _port: int, **_: Any) -> list[Any]:
            two = {
                "one-dead": [(LOOPBACK, closed), (LOOPBACK, port)],
                "all-dead": [(LOOPBACK, closed), ("127.0.0.2", closed)],
            }[host]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", address) for address in two]

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(loop, "getaddrinfo", addresses)
            with await _dial(loop, "one-dead", 0) as sock:
                assert sock.getpeername() == (LOOPBACK, port)
            with pytest.raises(
                OSError, match=r"^Multiple exceptions: .*127\.0\.0\.1.*127\.0\.0\.2"
            ):
                await _dial(loop, "all-dead", 0)
    with pytest.raises(ConnectionRefusedError):
        await _dial(loop, LOOPBACK, closed)


async def test_a_dial_cancelled_while_connecting_closes_its_socket() -> None:
    """Cancelled while the TCP connect waits (a proxy whose accept queue is full drops the
    SYN), dialling closes the socket it made."""
    loop = asyncio.get_running_loop()
    with socket.socket() as listening:
        listening.bind((LOOPBACK, 0))
        listening.listen(0)
        address = listening.getsockname()
        queued = [socket.create_connection(address)]  # a backlog of 0 queues one: it is full
        made: list[CountingSocket] = []
        original = CountingSocket.__init__

        def remember(sock: CountingSocket, *args: Any) -> None:
            original(sock, *args)
            made.append(sock)

        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(CountingSocket, "__init__", remember)
                dialling = asyncio.ensure_future(_dial(loop, *address))
                assert await until(lambda: bool(made), PATIENT)
                await asyncio.sleep(0.1)  # the connect is under way
                assert not dialling.done()
                dialling.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await dialling
            assert made[0].fileno() == -1  # closed
        finally:
            for sock in queued:
                sock.close()


def test_the_route_is_named_in_errors_of_every_shape() -> None:
    """tell_where adds the route to an OSError's text, to a message argument (and aiohttp's
    ``message``), or as an argument of its own."""
    reset_error = aiohttp.ClientOSError(104, "Connection reset by peer")
    tell_where(reset_error, "route 1")
    assert str(reset_error) == "[Errno 104] Connection reset by peer (route 1)"
    gone = aiohttp.ServerDisconnectedError()
    tell_where(gone, "route 1")
    assert (str(gone), gone.message) == (
        "Server disconnected (route 1)",
        "Server disconnected (route 1)",
    )
    bare = aiohttp.ClientConnectionError()
    tell_where(bare, "route 1")
    assert bare.args == ("route 1",)
