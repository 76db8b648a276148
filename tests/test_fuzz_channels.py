"""Mutated requests on both SOAP channels of ``gateway serve``: every answer is a SOAP Fault or a valid response,
never another shape and never a hang, and the process is healthy afterwards. Seeded, so a failure repeats."""
from __future__ import annotations

import copy
import http.client
import random
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import urllib3
from lxml import etree

from emulators.sync_provider import SyncProviderEmulator
from tests.served import ServedGateway, served_gateway
from tests.wire import (
    SOAP_ENV,
    assert_wire_valid,
    async_send,
    delivery_notification,
    get_messages,
    get_status,
    post,
    sync_request,
)

SEED = 20261205
CASES_PER_CHANNEL = 400
CLIENT_TIMEOUT_SECONDS = 20.0
BODY_READ_TIMEOUT_SECONDS = 1.0
MAX_BODY_BYTES = 1024 * 1024

SEEDS = {
    "/bip-sync/": [sync_request(), sync_request(password="wrong"),
                   sync_request(properties="<properties><key>k</key><value>v</value></properties>")],
    "/bip-async/": [async_send("AsyncPull"), get_status("m-1", "pep", "pep-test-password"),
                    get_messages("AsyncPull", "asyncprov", "asyncprov-password"),
                    delivery_notification("m-1", "AsyncPull", "MESSAGE_ACCEPTED", "NOT_RESEND", "asyncprov", "x")],
}


@dataclass(frozen=True)
class Case:
    """A request to send: its bytes, and the Content-Length to declare (more than sent: a truncated body)."""

    name: str
    body: bytes
    declared: int


def _elements(root: etree._Element) -> list[etree._Element]:
    return [element for element in root.iter(tag=etree.Element) if element is not root]


def flip_bytes(rng: random.Random, body: bytes) -> bytes:
    mutated = bytearray(body)
    for _ in range(rng.randint(1, 8)):
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
    return bytes(mutated)


def duplicate_element(rng: random.Random, root: etree._Element) -> None:
    element = rng.choice(_elements(root))
    element.addnext(copy.deepcopy(element))


def remove_element(rng: random.Random, root: etree._Element) -> None:
    element = rng.choice(_elements(root))
    element.getparent().remove(element)


def wrong_namespace(rng: random.Random, root: etree._Element) -> None:
    element = rng.choice(_elements(root) + [root])
    element.tag = f"{{urn:fuzz:{rng.randrange(3)}}}{etree.QName(element).localname}"


START_TAG = re.compile(rb"<([A-Za-z_][\w.:-]*)([^<>]*?)(/?)>")


def inject(rng: random.Random, body: bytes, attributes: bytes = b"", content: bytes = b"") -> bytes:
    """Put ``attributes`` into, and ``content`` right inside, a random start tag (built as bytes: lxml would
    take quadratic time to set thousands of attributes)."""
    tag = rng.choice(list(START_TAG.finditer(body)))
    name, rest, empty = tag.groups()
    opening = b"<" + name + rest + attributes + b">"
    replacement = opening + content + (b"</" + name + b">" if empty else b"")
    return body[: tag.start()] + replacement + body[tag.end():]


def deep_nesting(rng: random.Random, body: bytes) -> bytes:
    depth = rng.choice([50, 250, 300, 5000])
    return inject(rng, body, content=b"<nest>" * depth + b"</nest>" * depth)


def huge_attributes(rng: random.Random, body: bytes) -> bytes:
    if rng.random() < 0.5:
        count = rng.choice([500, 1001, 30_000])
        return inject(rng, body, attributes=b"".join(b' a%d="v"' % i for i in range(count)))
    return inject(rng, body, attributes=b' big="' + b"x" * rng.choice([1000, 500_000]) + b'"')


def many_namespaces(rng: random.Random, body: bytes) -> bytes:
    count = rng.choice([100, 2500])
    return inject(rng, body, attributes=b"".join(b' xmlns:p%d="urn:ns:%d"' % (i, i) for i in range(count)))


def many_elements(rng: random.Random, body: bytes) -> bytes:
    return inject(rng, body, content=b"<e/>" * rng.choice([1000, 60_000]))


TREE_MUTATIONS: list[Callable[[random.Random, etree._Element], None]] = [duplicate_element, remove_element, wrong_namespace]
BYTE_MUTATIONS: list[Callable[[random.Random, bytes], bytes]] = [deep_nesting, huge_attributes, many_namespaces, many_elements]


def mutate(rng: random.Random, seed: str) -> Case:
    body = seed.encode()
    kind = rng.randrange(10)
    if kind == 0:
        return Case("flip", flip_bytes(rng, body), -1)
    if kind == 1:
        cut = body[: rng.randrange(len(body))]
        return Case("truncated-declared", cut, len(body)) if rng.random() < 0.3 else Case("truncated", cut, -1)
    if kind == 2:
        return Case("oversized", body + b" " * (MAX_BODY_BYTES + 1), -1)
    if kind < 6:
        injection = rng.choice(BYTE_MUTATIONS)
        return Case(injection.__name__, injection(rng, body), -1)
    root = etree.fromstring(body)
    mutation = rng.choice(TREE_MUTATIONS)
    for _ in range(rng.randint(1, 2)):
        if _elements(root):
            mutation(rng, root)
    return Case(mutation.__name__, etree.tostring(root), -1)


def send(base_url: str, path: str, case: Case) -> tuple[int, bytes, float]:
    """POST ``case`` on a fresh connection with a client timeout; (status, body, seconds)."""
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=CLIENT_TIMEOUT_SECONDS)
    started = time.monotonic()
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", "text/xml; charset=utf-8")
        connection.putheader("Content-Length", str(case.declared if case.declared >= 0 else len(case.body)))
        connection.endheaders()
        try:
            connection.send(case.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole body was sent (too large): the answer is still there to read
        response = connection.getresponse()
        return response.status, response.read(), time.monotonic() - started
    finally:
        connection.close()


def assert_soap_answer(status: int, body: bytes, case: Case) -> None:
    """A SOAP Fault whose detail validates, or a 200 response that validates, against the real ShEP schemas."""
    where = f"{case.name}: HTTP {status} {body[:300]!r}"
    payload = etree.fromstring(body).find(f"{{{SOAP_ENV}}}Body")[0]
    if payload.tag == f"{{{SOAP_ENV}}}Fault":
        assert status in (500, 503), where
        detail = payload.find("detail")
        assert detail is not None and len(detail) == 1, where
        assert_wire_valid(detail[0])
    else:
        assert status == 200, where
        assert_wire_valid(payload)


@pytest.fixture(scope="module")
def gateway(database_url: str, loaded_registry: None) -> Iterator[ServedGateway]:
    with served_gateway(database_url, workers="1", threads="16", registry_refresh_seconds="0",
                        body_read_timeout_seconds=str(BODY_READ_TIMEOUT_SECONDS),
                        max_body_bytes=str(MAX_BODY_BYTES)) as served:
        yield served


@pytest.mark.parametrize("path", list(SEEDS))
def test_mutated_requests_get_a_soap_answer_in_time(
    gateway: ServedGateway, path: str, provider: SyncProviderEmulator
) -> None:
    rng = random.Random(f"{SEED}{path}")
    cases = [mutate(rng, rng.choice(SEEDS[path])) for _ in range(CASES_PER_CHANNEL)]
    workers_before = {process.pid for process in gateway.worker_processes()}
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda case: send(gateway.url, path, case), cases))
    slowest = max(seconds for _, _, seconds in answers)
    for case, (status, body, _) in zip(cases, answers):
        assert_soap_answer(status, body, case)
    assert slowest < BODY_READ_TIMEOUT_SECONDS + 10, f"an answer took {slowest:.1f} s"
    assert {process.pid for process in gateway.worker_processes()} == workers_before, "a worker died or was killed"
    assert post(f"{gateway.url}/bip-sync/", sync_request()).status == 200
    assert urllib3.request("GET", f"{gateway.url}/health", timeout=5.0).status == 200


@pytest.mark.parametrize("chunks", [b"zz\r\nabc\r\n0\r\n\r\n", b"5\r\nabcdefgh\r\n0\r\n\r\n"], ids=["bad size", "no terminator"])
@pytest.mark.parametrize("path", list(SEEDS))
def test_broken_chunked_framing_gets_a_soap_fault(gateway: ServedGateway, path: str, chunks: bytes) -> None:
    address = urlsplit(gateway.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=20)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", "text/xml")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        connection.send(chunks)
        response = connection.getresponse()
        status, body = response.status, response.read()
    finally:
        connection.close()
    assert_soap_answer(status, body, Case("broken chunked framing", chunks, -1))
    assert status == 500 and b"SCE001" in body, body[:400]
