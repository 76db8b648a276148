"""The outbound client on the loop (aiohttp) against scripted loopback servers: the answers HTTP allows (fixed
length, chunked, ``Connection: close``, an interim 1xx answer) and the failures a provider can cause (an
early close, slow headers, an oversized answer, a refused port, a certificate that does not verify), each
named as the catalogue names it; and the gateway trusting an HTTPS provider through ``GATEWAY_PROVIDER_CA_FILE``."""
from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sqlalchemy import Engine

from gateway.app import create_app
from gateway.errors import ErrorCode, GatewayError
from gateway.outbound.async_client import AsyncHttpClient
from gateway.outbound.http_client import HttpAnswer
from gateway.serving import BackgroundAsgiServer
from registry.admin import RegistryAdmin
from tests.conftest import gateway_settings
from tests.wire import post, sync_request

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


def calls(url: str, count: int, budget: float = 5.0, tls: ssl.SSLContext | None = None) -> list[HttpAnswer]:
    """``count`` calls one after another through one client (one pool)."""
    async def run() -> list[HttpAnswer]:
        client = AsyncHttpClient(connect_timeout=2.0, max_response_bytes=MAX_RESPONSE_BYTES, tls=tls)
        try:
            return [await client.post(url, b"<x/>", time.monotonic() + budget) for _ in range(count)]
        finally:
            await client.close()
    return asyncio.run(run())


def call(url: str, budget: float = 5.0, tls: ssl.SSLContext | None = None) -> HttpAnswer:
    return calls(url, 1, budget, tls)[0]


def refusal(url: str, budget: float = 5.0, tls: ssl.SSLContext | None = None) -> GatewayError:
    with pytest.raises(GatewayError) as raised:
        call(url, budget, tls)
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


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "provider.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


def test_tls_is_verified_against_the_trust_given(serve: Callable[..., ScriptedServer], tls_files: tuple[Path, Path]) -> None:
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(*tls_files)
    server = serve(fixed(b"<secure/>"), tls=server_side)
    url = f"https://127.0.0.1:{server.port}/p"
    # The system's trust store does not know this provider's certificate: refused, and said so.
    error = refusal(url)
    assert error.error is ErrorCode.PROVIDER_UNREACHABLE and "certificate" in error.data.lower()
    trusting = ssl.create_default_context(cafile=str(tls_files[0]))
    assert call(url, tls=trusting).body == b"<secure/>"


def test_the_gateway_verifies_an_https_provider_against_its_provider_ca_file(
    serve: Callable[..., ScriptedServer], tls_files: tuple[Path, Path], database_url: str, engine: Engine,
    loaded_registry: None, provider_url: str,
) -> None:
    canned = post(f"{provider_url}/provider", sync_request()).body  # the emulator's answer, served over TLS
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(*tls_files)
    server = serve(fixed(canned), tls=server_side)
    admin = RegistryAdmin(engine)
    admin.create("delivery-points", {"id": 9401, "url": f"https://127.0.0.1:{server.port}/provider", "callMode": 1}, "test")
    admin.create("services", {"key": "TlsProviderService", "name": "A provider over HTTPS", "ownerIS": "gbdfl",
                              "interactionMode": "SYNC", "defaultDeliveryPoint": 9401,
                              "users": [{"informationSystem": "pep"}]}, "test")
    for ca_file, expected in ((None, "SCE"), (tls_files[0], None)):
        app = create_app(gateway_settings(database_url, provider_ca_file=ca_file, registry_refresh_seconds=0), engine=engine)
        try:
            with BackgroundAsgiServer(app) as gateway:
                answer = post(f"{gateway.url}/bip-sync/", sync_request("TlsProviderService"))
        finally:
            app.close()
        if expected is None:
            assert answer.status == 200, answer.body[:400]
        else:
            assert answer.status == 500 and answer.error_code() == ErrorCode.PROVIDER_UNREACHABLE.code, answer.body[:400]
