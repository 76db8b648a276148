"""Hostile XML (DTDs, entity expansion, external entities) is refused with a fault; nothing is read or fetched."""
from __future__ import annotations

import os
import threading
from pathlib import Path

from gateway.emulators.http import BackgroundServer
from gateway.emulators.sync_provider import SyncProviderEmulator
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
