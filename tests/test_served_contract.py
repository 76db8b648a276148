"""The WSDL and XSD the gateway serves are the project's wsdl/ and xsd/ files (which test_contract.py proves
wire-identical to the real ShEP set), with locations made absolute; every referenced document is served."""
from __future__ import annotations

import re

import pytest
import urllib3
from lxml import etree

from tests.wire import REPO_ROOT

LOCATIONS = re.compile(r'(?:schemaLocation|location)="([^"]+)"')


def fetch(url: str) -> bytes:
    response = urllib3.request("GET", url)
    assert response.status == 200, url
    return response.data


CHANNELS = {
    "/bip-sync/": ("SyncChannelHttp_Service.wsdl", {"ISyncChannel.wsdl", "sync-v10.xsd", "sync-v10-request.xsd", "sync-v10-response.xsd", "common-v10.xsd"}),
    "/bip-async/": ("AsyncChannelHttp_Service.wsdl", {"IAsyncChannel.wsdl", "async-v10.xsd", "async-v10-itypes.xsd", "common-v10.xsd"}),
}


@pytest.mark.parametrize("endpoint", list(CHANNELS))
def test_served_documents_are_the_project_files_with_absolute_locations(gateway_url: str, endpoint: str) -> None:
    service_wsdl, expected = CHANNELS[endpoint]
    start = f"{gateway_url}{endpoint}?wsdl"
    pending, seen = [start], set()
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        served = fetch(url).decode("utf-8")
        etree.fromstring(served.encode())  # well-formed
        name = service_wsdl if url == start else url.rsplit("/", 1)[1]
        folder = "xsd" if name.endswith(".xsd") else "wsdl"
        on_disk = (REPO_ROOT / folder / name).read_text(encoding="utf-8")
        for location in LOCATIONS.findall(served):
            if location.startswith(gateway_url) and location.endswith((".wsdl", ".xsd")):
                pending.append(location)
        relative = served.replace(f"{gateway_url}/xsd/", "" if folder == "xsd" else "../xsd/").replace(
            f"{gateway_url}/wsdl/", ""
        )
        relative = relative.replace(f'location="{gateway_url}{endpoint}"', f'location="http://localhost:8080{endpoint}"')
        assert relative == on_disk, f"{url} differs from {folder}/{name}"
    names = {u.rsplit("/", 1)[1] for u in seen if u != start}
    assert names == expected


def test_wsdl_address_follows_the_endpoint_asked(gateway_url: str) -> None:
    for path in ("/bip-sync/", "/bip-sync-wss-gost/", "/bip-async/"):
        wsdl = etree.fromstring(fetch(f"{gateway_url}{path}?wsdl"))
        address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
        assert address.get("location") == f"{gateway_url}{path}"


def test_unknown_documents_and_paths(gateway_url: str) -> None:
    for path in ("/xsd/nope.xsd", "/xsd/..%2Fpyproject.toml", "/wsdl/../README.md", "/elsewhere"):
        assert urllib3.request("GET", f"{gateway_url}{path}").status == 404
