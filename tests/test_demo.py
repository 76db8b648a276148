"""README's first command: ``gateway demo`` starts everything and shows a GOST-signed exchange of its GOST
participant on ``/bip-sync-wss-gost/``, checked by chain, CRL and the OCSP responder emulator."""
from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import free_port

DEADLINE_SECONDS = 90.0


def test_the_demo_shows_a_gost_exchange(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("GATEWAY_")}
    env.update(GATEWAY_PORT=str(free_port()), GATEWAY_ADMIN_PORT=str(free_port()), GATEWAY_WORKERS="1")
    demo = subprocess.Popen([sys.executable, "-m", "gateway.cli", "demo"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        selector = selectors.DefaultSelector()
        selector.register(demo.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline and not any(line.startswith("GOST exchange") for line in lines):
            if selector.select(timeout=1.0):
                line = demo.stdout.readline()
                if not line:
                    break
                lines.append(line)
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=60)
    exchange = next((line for line in lines if line.startswith("GOST exchange")), None)
    assert exchange is not None, "".join(lines)[-3000:]
    assert "signature verified (chain, CRL and OCSP)" in exchange
    assert "answer HTTP 200 signed with http://www.w3.org/2001/04/xmldsig-more#gost34310-gost34311" in exchange
    assert (tmp_path / "var" / "pki" / "gost" / "gost-client.pem").exists()
