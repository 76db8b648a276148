"""Hostile XML (DTDs, entity expansion, external entities) is refused with a fault; nothing is read or fetched."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from lxml import etree

from gateway.serving import BackgroundServer
from emulators.sync_provider import SyncProviderEmulator
from tests.wire import post, sync_request


def with_dtd(dtd: str, data: str) -> str:
    return f"<?xml version=\"1.0\"?>\n<!DOCTYPE foo [{dtd}]>\n" + sync_request(data=f"<data>{data}</data>")


BILLION_LAUGHS = "".join(
    ['<!ENTITY lol0 "lol">']
    + [f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
)


def test_billion_laughs(sync_url: str, provider: SyncProviderEmulator) -> None:
    answer = post(sync_url, with_dtd(BILLION_LAUGHS, "&lol9;"))
    assert answer.error_code() == "SCE001"
    assert "DTD" in answer.fault_info().findtext("errorData")
    assert provider.received == []


def test_external_file_entity_is_never_opened(sync_url: str, tmp_path: Path, provider: SyncProviderEmulator) -> None:
    # A FIFO tells whether anyone opened it: the writer's open() only returns once a reader has opened it too.
    fifo = tmp_path / "secret"
    os.mkfifo(fifo)
    opened = threading.Event()

    def writer() -> None:
        with open(fifo, "w") as pipe:
            opened.set()
            pipe.write("TOP-SECRET")

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    answer = post(sync_url, with_dtd(f'<!ENTITY xxe SYSTEM "file://{fifo}">', "&xxe;"))
    assert answer.error_code() == "SCE001"
    assert b"TOP-SECRET" not in answer.body
    assert not opened.is_set(), "the parser opened the external entity's file"
    with open(fifo) as pipe:  # let the writer finish
        pipe.read()
    thread.join(timeout=5)
    assert opened.is_set()


def test_external_http_entity_is_never_fetched(sync_url: str, provider: SyncProviderEmulator) -> None:
    hits: list[str] = []

    def trap(environ, start_response):
        hits.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"EXFILTRATED"]

    with BackgroundServer(trap) as server:
        for dtd in (f'<!ENTITY xxe SYSTEM "{server.url}/entity">', f'<!ENTITY % p SYSTEM "{server.url}/param"> %p;'):
            answer = post(sync_url, with_dtd(dtd, "&xxe;" if "xxe" in dtd else "x"))
            assert answer.error_code() == "SCE001"
            assert b"EXFILTRATED" not in answer.body
    assert hits == []


def test_external_dtd_reference(sync_url: str, provider: SyncProviderEmulator) -> None:
    body = '<?xml version="1.0"?>\n<!DOCTYPE foo SYSTEM "file:///etc/passwd">\n' + sync_request()
    answer = post(sync_url, body)
    assert answer.error_code() == "SCE001"
    assert b"root:" not in answer.body


def test_dtd_in_a_utf16_document(sync_url: str, provider: SyncProviderEmulator) -> None:
    body = with_dtd(BILLION_LAUGHS, "&lol9;").replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    answer = post(sync_url, body.encode("utf-16"), content_type="text/xml; charset=utf-16")
    assert answer.error_code() == "SCE001"
    assert "DTD" in answer.fault_info().findtext("errorData")
    assert provider.received == []


def data_with(attributes: str = "", content: str = "hello") -> str:
    return f'<data xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"{attributes}>{content}</data>'


def test_data_with_many_attributes_is_carried_in_linear_time(sync_url: str, provider: SyncProviderEmulator) -> None:
    attributes = "".join(f' a{i}="{i}"' for i in range(1000))  # the most one element may have
    started = time.monotonic()
    answer = post(sync_url, sync_request(data=data_with(attributes)))
    assert answer.status == 200, answer.body[:500]
    assert time.monotonic() - started < 5
    forwarded = etree.fromstring(provider.received[-1].body).find(".//requestData/data")
    assert len(forwarded.attrib) == 1000 and forwarded.get("a999") == "999"


@pytest.mark.parametrize(
    ("attributes", "content", "named"),
    [
        # copied one by one, 20,000 attributes took seconds (150,000 froze a worker)
        ("".join(f' a{i}="v"' for i in range(20_000)), "x", "more than 1000 attributes"),
        ("".join(f' xmlns:p{i}="urn:p:{i}"' for i in range(2_500)), "x", "more than 2000 namespaces"),
        ("", "<n>" * 300 + "</n>" * 300, "nesting deeper than 256"),
    ],
    ids=["attributes", "namespaces", "depth"],
)
def test_documents_beyond_the_caps_are_refused_at_once(
    sync_url: str, provider: SyncProviderEmulator, attributes: str, content: str, named: str
) -> None:
    started = time.monotonic()
    answer = post(sync_url, sync_request(data=data_with(attributes, content)))
    assert time.monotonic() - started < 2
    assert answer.error_code() == "SCE001"
    assert named in answer.fault_info().findtext("errorData")
    assert provider.received == []


def test_data_keeps_its_namespace_context(sync_url: str, provider: SyncProviderEmulator) -> None:
    """Prefixes in scope go along (QName values refer to them); content in a default namespace stays in it."""
    data = ('<d:data xmlns:d="urn:any" xmlns:q="urn:q" xmlns="urn:default" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
            ' kind="q:thing"><item>1</item><q:item>2</q:item></d:data>')
    answer = post(sync_url, sync_request(data=data))
    assert answer.status == 200, answer.body[:500]
    forwarded = etree.fromstring(provider.received[-1].body).find(".//requestData/data")
    assert forwarded is not None, "data must be unqualified"
    assert forwarded.nsmap["q"] == "urn:q"
    assert [child.tag for child in forwarded] == ["{urn:default}item", "{urn:q}item"]
    assert b"<item xmlns=\"urn:default\">" in provider.received[-1].body
