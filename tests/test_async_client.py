"""The outbound client on the loop (aiohttp) against scripted loopback servers: the answers HTTP allows (fixed
length, chunked, ``Connection: close``, an interim 1xx answer) and the failures a provider can cause (an
early close, slow headers, an oversized answer, a refused port), each named as the catalogue names it. TLS is
``test_provider_tls.py``'s."""
from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from gateway.errors import ErrorCode, GatewayError
from gateway.outbound.async_client import AsyncHttpClient, HttpAnswer

Answer = Callable[[socket.socket, bytes], None]
MAX_RESPONSE_BYTES = 64 * 1024


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return b""
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += conn.recv(65536)
    return head


class ScriptedServer:
    """A loopback server answering each request with ``answer(connection, request_head)``; counts connections."""

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.connections = 0
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        try:
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
            while head := _read_request(conn):
                self.answer(conn, head)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._listener.close()


def calls(url: str, count: int, budget: float = 5.0, tls: ssl.SSLContext | None = None, trust: str = "") -> list[HttpAnswer]:
    """``count`` calls one after another through one client (one pool)."""
    async def run() -> list[HttpAnswer]:
        client = AsyncHttpClient(connect_timeout=2.0, max_response_bytes=MAX_RESPONSE_BYTES, tls=tls)
        try:
            return [await client.post(url, b"<x/>", time.monotonic() + budget, trust) for _ in range(count)]
        finally:
            await client.close()
    return asyncio.run(run())


def call(url: str, budget: float = 5.0, tls: ssl.SSLContext | None = None, trust: str = "") -> HttpAnswer:
    return calls(url, 1, budget, tls, trust)[0]


def refusal(url: str, budget: float = 5.0, tls: ssl.SSLContext | None = None, trust: str = "") -> GatewayError:
    with pytest.raises(GatewayError) as raised:
        call(url, budget, tls, trust)
    return raised.value


@pytest.fixture()
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(answer: Answer, tls: ssl.SSLContext | None = None) -> ScriptedServer:
        servers.append(ScriptedServer(answer, tls))
        return servers[-1]
    yield start
    for server in servers:
        server.close()


def fixed(body: bytes, extra: bytes = b"") -> Answer:
    return lambda conn, _: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra) + body)


def test_fixed_length_answers_reuse_the_connection(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(fixed(b"<answer/>"))
    answers = calls(f"http://127.0.0.1:{server.port}/p", 3)
    assert [(a.status, a.body) for a in answers] == [(200, b"<answer/>")] * 3
    assert server.connections == 1


def test_a_chunked_answer_is_read_whole(serve: Callable[..., ScriptedServer]) -> None:
    chunks = b"4\r\n<ans\r\n6\r\nwer/>\n\r\n0\r\n\r\n"
    server = serve(lambda conn, _: conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks))
    assert call(f"http://127.0.0.1:{server.port}/p").body == b"<answer/>\n"


def test_connection_close_is_honoured_and_the_next_call_connects_again(serve: Callable[..., ScriptedServer]) -> None:
    def answer_and_close(conn: socket.socket, _: bytes) -> None:
        fixed(b"<answer/>", b"Connection: close\r\n")(conn, _)
        conn.shutdown(socket.SHUT_RDWR)
    server = serve(answer_and_close)
    answers = calls(f"http://127.0.0.1:{server.port}/p", 2)
    assert [a.body for a in answers] == [b"<answer/>"] * 2
    assert server.connections == 2


def test_an_interim_1xx_answer_is_skipped(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(lambda conn, _: conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" + b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes"))
    answer = call(f"http://127.0.0.1:{server.port}/p")
    assert (answer.status, answer.body) == (200, b"yes")


def test_an_answer_cut_short_is_unreachable_not_a_partial_body(serve: Callable[..., ScriptedServer]) -> None:
    def cut(conn: socket.socket, _: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<answer")
        conn.close()
    server = serve(cut)
    error = refusal(f"http://127.0.0.1:{server.port}/p")
    assert error.error is ErrorCode.PROVIDER_UNREACHABLE and "without a complete answer" in error.data


def test_slow_headers_time_out_within_the_budget(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(lambda conn, _: time.sleep(3))
    started = time.monotonic()
    error = refusal(f"http://127.0.0.1:{server.port}/p", budget=0.5)
    assert error.error is ErrorCode.PROVIDER_TIMEOUT
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("framing", ["declared", "chunked"])
def test_an_oversized_answer_is_refused(serve: Callable[..., ScriptedServer], framing: str) -> None:
    big = b"x" * (MAX_RESPONSE_BYTES + 1)
    if framing == "declared":
        server = serve(fixed(big))
    else:
        server = serve(lambda conn, _: conn.sendall(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(big), big)))
    error = refusal(f"http://127.0.0.1:{server.port}/p")
    assert error.error is ErrorCode.PROVIDER_RESPONSE_INVALID and str(MAX_RESPONSE_BYTES) in error.data


def test_a_refused_port_is_named() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = refusal(f"http://127.0.0.1:{port}/p")
    assert error.error is ErrorCode.PROVIDER_UNREACHABLE and "connection refused" in error.data
