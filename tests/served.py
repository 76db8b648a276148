"""The gateway as production runs it, for tests that need its processes: ``gateway serve`` (uvicorn)
in a subprocess on a free loopback port, without the delivery worker and admin API beside it."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest
import urllib3
from lxml import etree

from tests.conftest import REPO_ROOT, free_port
from tests.wire import SOAP_ENV


@dataclass
class ServedGateway:
    url: str
    process: subprocess.Popen[bytes]

    def worker_processes(self) -> list[psutil.Process]:
        """The processes serving requests: uvicorn's workers, or ``gateway serve`` itself with one worker."""
        serve = psutil.Process(self.process.pid)
        return serve.children() or [serve]


def fault_code(body: bytes) -> str | None:
    """The errorCode of a SOAP Fault answer, if it is one."""
    try:
        return etree.fromstring(body).findtext(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault/detail/*/errorCode")
    except etree.XMLSyntaxError:
        return None


@contextlib.contextmanager
def served_gateway(database_url: str, **settings: str) -> Iterator[ServedGateway]:
    """Run ``gateway serve`` with ``settings`` (GATEWAY_* names without the prefix) until the block ends."""
    port = free_port()
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_PORT=str(port), GATEWAY_DELIVERY_IN_SERVE="false",
               GATEWAY_ADMIN_IN_SERVE="false", GATEWAY_LOG_LEVEL="WARNING")
    env.update({f"GATEWAY_{name.upper()}": value for name, value in settings.items()})
    # A file, not a pipe: a pipe nobody reads while the test runs would block the server once full.
    output = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], cwd=REPO_ROOT, env=env,
                               stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    http = urllib3.PoolManager(retries=False)
    deadline = time.monotonic() + 30
    try:
        while True:
            with contextlib.suppress(urllib3.exceptions.HTTPError):
                if http.request("GET", f"{url}/health", timeout=1.0).status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                output.seek(0)
                pytest.fail(f"gateway serve did not start: {output.read().decode()[-2000:]}")
            time.sleep(0.2)
        yield ServedGateway(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()
