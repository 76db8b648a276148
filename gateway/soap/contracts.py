"""Publishing the contract: the project's ``wsdl/`` and ``xsd/`` files, served with absolute locations.

On disk every location is relative (so tools can load the files from the repository); over HTTP a client
resolves them against whatever URL it fetched, so the gateway rewrites them to absolute URLs under its own
base address and points ``soap:address`` at the endpoint the WSDL was requested from.
"""
from __future__ import annotations

import posixpath
import re
from pathlib import Path

_LOCATION = re.compile(rb'((?:schemaLocation|location)=")([^"]+)(")')
_SOAP_ADDRESS = re.compile(rb'(<soap:address\s+location=")([^"]*)(")')
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+\.(wsdl|xsd)$")

SERVICE_WSDL_BY_PATH = {
    "/bip-sync/": "SyncChannelHttp_Service.wsdl",
    "/bip-sync-wss-gost/": "SyncChannelHttp_Service.wsdl",
    "/bip-async/": "AsyncChannelHttp_Service.wsdl",
}
# The endpoint a service WSDL fetched by file name (``/wsdl/<name>``) points at.
ENDPOINT_OF_SERVICE_WSDL = {"SyncChannelHttp_Service.wsdl": "/bip-sync/", "AsyncChannelHttp_Service.wsdl": "/bip-async/"}


class ContractDocuments:
    """Reads the published WSDL/XSD files once and serves them rewritten for a base URL."""

    def __init__(self, contracts_dir: Path) -> None:
        self._dir = contracts_dir
        self._files: dict[tuple[str, str], bytes] = {}

    def _raw(self, folder: str, name: str) -> bytes:
        key = (folder, name)
        if key not in self._files:
            self._files[key] = (self._dir / folder / name).read_bytes()
        return self._files[key]

    def document(self, folder: str, name: str, base_url: str, endpoint_path: str | None = None) -> bytes | None:
        """The file ``folder/name`` with absolute locations under ``base_url``; None when there is no such file."""
        if folder not in ("wsdl", "xsd") or not _SAFE_NAME.match(name) or not (self._dir / folder / name).is_file():
            return None
        content = _LOCATION.sub(lambda m: self._absolute(m, folder, base_url), self._raw(folder, name))
        if endpoint_path is not None:
            address = (base_url + endpoint_path).encode()
            content = _SOAP_ADDRESS.sub(lambda m: m.group(1) + address + m.group(3), content)
        return content

    @staticmethod
    def _absolute(match: re.Match[bytes], folder: str, base_url: str) -> bytes:
        location = match.group(2).decode()
        if "://" in location:
            return match.group(0)
        resolved = posixpath.normpath(posixpath.join(folder, location))
        return match.group(1) + f"{base_url}/{resolved}".encode() + match.group(3)
