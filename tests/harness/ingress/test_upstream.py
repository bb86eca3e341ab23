"""The proxies' upstream client: keep-alive reuse, response framings, the idle race, timeouts."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from harness.ingress.upstream import (
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamPool,
    UpstreamTimeout,
)

#: what the scripted server does with the n-th request (1-based) on a connection:
#: returns the bytes to send, and whether to close the connection after sending them
Script = Callable[[int], tuple[bytes, bool]]


def ok(body: bytes = b"hi") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body)


class ScriptedServer:
    """A TCP server answering each request as ``script`` says; counts connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            for number in range(1, 100):
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                self.requests.append(data)
                answer, close = self.script(number)
                conn.sendall(answer)
                if close:
                    return

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def run(coroutine_factory: Callable[[UpstreamPool], object], **options: float) -> object:
    async def main() -> object:
        pool = UpstreamPool(**options)  # type: ignore[arg-type]
        try:
            return await coroutine_factory(pool)  # type: ignore[misc]
        finally:
            await pool.aclose()

    return asyncio.run(main())


def test_requests_reuse_one_keep_alive_connection(
    serve: Callable[[Script], ScriptedServer],
) -> None:
    server = serve(lambda n: (ok(b"answer %d" % n), False))

    async def five(pool: UpstreamPool) -> list[bytes]:
        return [(await pool.request("GET", server.url, "/x", [])).body for _ in range(5)]

    assert run(five) == [b"answer %d" % n for n in range(1, 6)]
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /x HTTP/1.1\r\nhost: 127.0.0.1:")


def test_origin_path_prefix_body_and_headers_are_sent(
    serve: Callable[[Script], ScriptedServer],
) -> None:
    server = serve(lambda n: (ok(), False))

    async def post(pool: UpstreamPool) -> int:
        response = await pool.request(
            "POST", server.url + "/v1", "/query?a=1", [(b"x-one", b"1")], b'{"k":1}'
        )
        return response.status

    assert run(post) == 200
    head = server.requests[0]
    assert head.startswith(b"POST /v1/query?a=1 HTTP/1.1\r\n")
    assert b"\r\nx-one: 1\r\n" in head and b"\r\ncontent-length: 7\r\n" in head


def test_chunked_and_close_delimited_bodies_are_whole(
    serve: Callable[[Script], ScriptedServer],
) -> None:
    chunked = serve(
        lambda n: (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            False,
        )
    )
    until_close = serve(lambda n: (b"HTTP/1.1 200 OK\r\nx-a: b\r\n\r\nuntil the end", True))

    async def both(pool: UpstreamPool) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
        first = await pool.request("GET", chunked.url, "/", [])
        second = await pool.request("GET", until_close.url, "/", [])
        return first.body, second.body, second.headers

    assert run(both) == (b"abcde", b"until the end", [(b"x-a", b"b")])


def test_interim_100_continue_is_skipped_for_the_final_answer(
    serve: Callable[[Script], ScriptedServer],
) -> None:
    server = serve(lambda n: (b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final"), False))

    async def post(pool: UpstreamPool) -> tuple[int, bytes]:
        response = await pool.request("POST", server.url, "/", [(b"expect", b"100-continue")], b"x")
        return response.status, response.body

    assert run(post) == (200, b"final")


def test_reused_connection_closed_unanswered_is_sent_once_more_to_the_same_origin(
    serve: Callable[[Script], ScriptedServer],
) -> None:
    # the second request on a connection meets the server closing it (the idle-close race)
    server = serve(lambda n: (ok(), False) if n == 1 else (b"", True))

    async def two(pool: UpstreamPool) -> list[int]:
        return [(await pool.request("GET", server.url, "/", [])).status for _ in range(2)]

    assert run(two) == [200, 200]
    assert server.connections == 2
    assert len(server.requests) == 3  # the unanswered one, then its resend


def test_fresh_connection_closed_unanswered_is_an_error_not_resent(
    serve: Callable[[Script], ScriptedServer],
) -> None:
    server = serve(lambda n: (b"", True))

    async def one(pool: UpstreamPool) -> object:
        return await pool.request("GET", server.url, "/", [])

    with pytest.raises(UpstreamDisconnected):
        run(one)
    assert len(server.requests) == 1


def test_silent_peer_times_out_and_refused_connect_is_a_connect_error(
    serve: Callable[[Script], ScriptedServer],
) -> None:
    silent = serve(lambda n: (b"HTTP/1.1 200 OK\r\n", False))  # a head that never ends

    async def one(pool: UpstreamPool) -> object:
        return await pool.request("GET", silent.url, "/", [])

    with pytest.raises(UpstreamTimeout):
        run(one, idle_timeout_s=0.3)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def refused(pool: UpstreamPool) -> object:
        return await pool.request("GET", closed, "/", [])

    with pytest.raises(UpstreamConnectError):
        run(refused)
