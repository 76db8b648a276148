"""ecert: the spec's detached-JWS test vectors (backend-ecert.md §4.1), signature verification and the
adapter's options."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.ecert import EcertEmulator
from gateway.adapters.ecert import create
from gateway.adapters.ecert.jws import DetachedSigner, SignatureError, canonical_body, canonical_json
from gateway.outbound.async_client import AsyncHttpClient
from tests.adapters.looped import LoopThread

FIXTURES = Path(__file__).parent / "ecert_fixtures"
KEY = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
H = "eyJiNjQiOmZhbHNlLCJjcml0IjpbImI2NCJdLCJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9"
VECTOR_1 = H + "..uDoUsw29IdxnTp2WxRyquAkVbojuZRTM27qX7hNsaQnb0MPV2W_4sMtnK6PvSmCyl0laEeg6v7GfjOQm_iud1Q"
VECTOR_2 = H + "..LVHKXk2AQylfTNLmvsSsfED9YZobPQ_she7nb0JLJ-EhP7hfPj6lTEAAENUOm2xh0FBsnNBRP8SJnpXQYnE_fQ"
VECTOR_EMPTY = H + "..VHq8_XdXYmqAmXbPvAxUh4I97YWv2DMz_ld9YiKrQ_bjzsfJrMvX7mQZQkq-nguEeUqjNNcsHHUSoNBKZZzdAw"


def test_spec_vector_tasks_status_body() -> None:
    body = (FIXTURES / "tasks_status_request.json").read_bytes()
    canonical = canonical_body(body)
    assert canonical == b'{"Request_Types":["ec_create"],"Task_Quantity":10}'
    assert DetachedSigner(KEY).sign(canonical) == VECTOR_1
    assert len(VECTOR_1) == 160


def test_spec_vector_non_ascii_error_body() -> None:
    canonical = canonical_body((FIXTURES / "error_body.json").read_bytes())
    assert canonical == '{"Errors":[{"code":"EC00201","msg":"Запрос не соответствует схеме данных"}]}'.encode()
    assert len(canonical) == 108
    assert DetachedSigner(KEY).sign(canonical) == VECTOR_2


def test_spec_vector_empty_payload() -> None:
    assert DetachedSigner(KEY).sign(b"") == VECTOR_EMPTY


def test_emulator_signs_by_hand_as_the_adapter_does() -> None:
    # The emulator computes HMAC itself; both must agree with the spec's vectors.
    emulator = EcertEmulator(jws_key=KEY)
    assert emulator.sign(b'{"Request_Types":["ec_create"],"Task_Quantity":10}') == VECTOR_1
    assert emulator.sign(b"") == VECTOR_EMPTY


def test_verify_accepts_vectors_and_refuses_tampering() -> None:
    signer = DetachedSigner(KEY)
    payload = b'{"Request_Types":["ec_create"],"Task_Quantity":10}'
    signer.verify(VECTOR_1, payload)
    signer.verify(VECTOR_EMPTY, b"")
    with pytest.raises(SignatureError):
        signer.verify(VECTOR_1, payload.replace(b"10", b"11"))
    with pytest.raises(SignatureError):
        DetachedSigner(KEY[::-1]).verify(VECTOR_1, payload)
    with pytest.raises(SignatureError, match="detached"):
        signer.verify(VECTOR_1.replace("..", ".e30."), payload)


def test_verify_uses_the_received_header_but_requires_the_protocol_parameters() -> None:
    signer = DetachedSigner(KEY)
    payload = b"{}"
    # The request-parameter spelling of the header has inner spaces: a different H, still acceptable.
    spaced = base64.urlsafe_b64encode(b'{ "b64":false,"crit":["b64"],"typ":"JWT","alg":"HS512" }').rstrip(b"=").decode()
    emulator_like = EcertEmulator(jws_key=KEY)
    mac = hmac.new(KEY, spaced.encode() + b"." + payload, hashlib.sha512).digest()
    signer.verify(f"{spaced}..{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}", payload)
    assert emulator_like._verifies(f"{spaced}..{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}", payload)
    encoded = base64.urlsafe_b64encode(b'{"alg":"HS512"}').rstrip(b"=").decode()
    mac = hmac.new(KEY, encoded.encode() + b"." + payload, hashlib.sha512).digest()
    with pytest.raises(SignatureError, match="b64:false"):
        signer.verify(f"{encoded}..{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}", payload)


def test_canonical_json_keeps_cyrillic_raw_and_refuses_unsafe_integers() -> None:
    assert canonical_json({"b": "ЕСТР0001", "a": 1}) == '{"a":1,"b":"ЕСТР0001"}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"transactionNumber": 9999999999999999})
    assert json.loads(canonical_json({"x": [1, 2]})) == {"x": [1, 2]}


@pytest.fixture()
def http(loop_thread: LoopThread) -> Iterator[AsyncHttpClient]:
    client = AsyncHttpClient(connect_timeout=2, max_response_bytes=1_000_000)
    yield client
    loop_thread.run(client.close())


def _options(**extra: str) -> dict[str, str]:
    return {"baseUrl": "http://127.0.0.1:1/api/1.2.1-Y/ec", "apiKey": "k", "jwsKey": KEY.decode(), **extra}


def test_create_accepts_key_encodings(http: AsyncHttpClient) -> None:
    assert create(_options(), http).name == "ecert"
    assert create(_options(jwsKey=KEY.hex(), jwsKeyEncoding="hex"), http).name == "ecert"
    assert create(_options(jwsKey=base64.urlsafe_b64encode(KEY).decode().rstrip("="), jwsKeyEncoding="base64"), http)
    adapter = create(_options(timeoutSeconds="2.5", pollSeconds="3", maxPollSeconds="30"), http)
    assert adapter.namespace == "urn:gateway:adapters:ecert"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (_options(jwsKey="short"), "at least 64 bytes"),
        (_options(jwsKey="zz" * 64, jwsKeyEncoding="hex"), "not valid hex"),
        (_options(baseUrl="ftp://x"), "baseUrl"),
        (_options(timeoutSeconds="soon"), "timeoutSeconds"),
        (_options(pollSeconds="10", maxPollSeconds="5"), "maxPollSeconds"),
        (_options(colour="blue"), "colour"),
        ({"baseUrl": "http://x", "jwsKey": KEY.decode()}, "apiKey"),
    ],
)
def test_create_refuses_bad_options_without_echoing_the_key(http: AsyncHttpClient, options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        create(options, http)
    assert KEY.decode() not in str(caught.value)
