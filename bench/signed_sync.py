"""Benchmark: signed against unsigned synchronous SendMessage, gateway CPU per message, in one run.

Four variants, each with a fresh gateway (uvicorn, 2 workers, no admin API) and SQLite file, behind
the same provider emulator: unsigned (security mode 0); RSA-2048, P-256 and GOST 34.310-2004 (on
``/bip-sync-wss-gost/``, with the gateway's GOST key), where the service is in mode 2: the caller's signature is
verified (shape, digest and signature, BIN, chain to the test CA, CRL, replay record) and the gateway signs its
answer in the caller's algorithm. Then the in-process CPU of one GOST and one RSA verify and sign
(``signing_cpu.py``), in the same run. The delivery point stays in mode 0, so the figure is the target's round trip; a
point in mode 1 adds one more signature (the forwarded request). Callers' envelopes are signed before the clock
starts, each with its own messageId. The three gateways run side by side and the passes interleave them, so a
change in the machine's speed during the run touches all three alike; each figure is the median pass. Every loop
is bounded by a count and a time limit.

    .venv/bin/python bench/signed_sync.py [--requests 600] [--passes 5] [--concurrency 8] [--messages 300]
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from lxml import etree

from common import SIGNED_ENVELOPE, Run, cpu_seconds, drive, free_port, median_run, wait_until_up
from signing_cpu import measured, report

from gateway.security.gost_certificates import create_gost_ca, create_gost_crl, issue_gost_participant
from gateway.security.pki import create_ca, create_crl, issue_participant
from gateway.security.wssec import sign_envelope

TARGET_SIGNED_CPU_MS = 3.5
TARGET_GOST_OVER_RSA = 2.0
WARM_UP = 200
CALLER_BIN = "990140000022"
REGISTRY = """
organisations:
  - {{bin: "990140000011", name: Bench provider org, shortName: P}}
  - {{bin: "{caller_bin}", name: Bench consumer org, shortName: C}}
deliveryPoints:
  - {{id: 1, url: "http://127.0.0.1:{provider_port}/provider", callMode: 1, securityMode: {point_mode}, maxConcurrentCalls: 1000}}
informationSystems:
  - {{senderId: provider, organisation: "990140000011", shortName: P, name: Provider}}
  - {{senderId: bench, organisation: "{caller_bin}", shortName: B, name: Bench client, password: bench-password}}
services:
  - {{key: BenchService, name: Bench, ownerIS: provider, interactionMode: SYNC, defaultDeliveryPoint: 1,
     securityMode: {service_mode}, users: [{{informationSystem: bench}}]}}
"""


def bodies(count: int, key_pem: bytes | None, cert_pem: bytes | None) -> list[bytes]:
    """``count`` distinct envelopes, signed by the caller when a key is given."""
    out = []
    for _ in range(count):
        envelope = SIGNED_ENVELOPE.format(message_id=uuid.uuid4(), extra="").encode()
        if key_pem is not None:
            envelope = etree.tostring(sign_envelope(etree.fromstring(envelope), key_pem, cert_pem))
        out.append(envelope)
    return out


@dataclass
class Variant:
    """One gateway under test: its process, its URL, and the callers' envelopes it will be sent."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    next_body: Callable[[], bytes]
    cpu_ms: list[float] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)


def start_variant(name: str, args: argparse.Namespace, provider_port: int) -> Variant:
    """A fresh gateway (own folder, SQLite file and, when signed, test PKI) with its envelopes signed in advance."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-signed-{name}-"))
    ecdsa = name == "P-256"
    signed = name != "unsigned"
    gateway_port = free_port()
    env = dict(os.environ, GATEWAY_DATABASE_URL=f"sqlite:///{workdir / 'bench.db'}", GATEWAY_PORT=str(gateway_port),
               GATEWAY_WORKERS="2", GATEWAY_THREADS="8", GATEWAY_LOG_LEVEL="warning", GATEWAY_DELIVERY_IN_SERVE="false",
               GATEWAY_ADMIN_IN_SERVE="false")
    caller = None
    gost = name.startswith("GOST")
    if gost:
        gost_ca = create_gost_ca()
        gateway_key, caller = (issue_gost_participant(gost_ca, bin_, common_name=holder)
                               for bin_, holder in (("990140000033", "gateway"), (CALLER_BIN, "bench caller")))
        for file, data in (("ca.pem", gost_ca.cert_pem), ("ca.crl", create_gost_crl(gost_ca, [])),
                           ("gateway.key", gateway_key.key_pem), ("gateway.pem", gateway_key.cert_pem)):
            (workdir / file).write_bytes(data)
        env.update(GATEWAY_GOST_SIGNING_KEY=str(workdir / "gateway.key"), GATEWAY_GOST_SIGNING_CERT=str(workdir / "gateway.pem"),
                   GATEWAY_TRUSTED_GOST_CA_FILE=str(workdir / "ca.pem"), GATEWAY_CRL_SOURCES=str(workdir / "ca.crl"))
    elif signed:
        ca = create_ca()
        gateway_key = issue_participant(ca, "990140000033", common_name="gateway", ecdsa=ecdsa)
        caller = issue_participant(ca, CALLER_BIN, common_name="bench caller", ecdsa=ecdsa)
        for file, data in (("ca.pem", ca.cert_pem), ("ca.crl", create_crl(ca, [])), ("gateway.key", gateway_key.key_pem),
                           ("gateway.pem", gateway_key.cert_pem)):
            (workdir / file).write_bytes(data)
        env.update(GATEWAY_SIGNING_KEY=str(workdir / "gateway.key"), GATEWAY_SIGNING_CERT=str(workdir / "gateway.pem"),
                   GATEWAY_TRUSTED_CA_FILE=str(workdir / "ca.pem"), GATEWAY_CRL_SOURCES=str(workdir / "ca.crl"))
    (workdir / "registry.yaml").write_text(REGISTRY.format(
        caller_bin=CALLER_BIN, provider_port=provider_port, point_mode=0, service_mode=2 if signed else 0,
    ), encoding="utf-8")
    cli = [sys.executable, "-m", "gateway.cli"]
    subprocess.run([*cli, "registry", "load", str(workdir / "registry.yaml")], env=env, check=True, capture_output=True)
    prepared = bodies(WARM_UP + args.requests * args.passes, caller.key_pem if caller else None, caller.cert_pem if caller else None)
    position = itertools.count()
    lock = threading.Lock()

    def next_body() -> bytes:
        with lock:
            return prepared[next(position)]

    process = subprocess.Popen([*cli, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_up(f"http://127.0.0.1:{gateway_port}/health")
    path = "bip-sync-wss-gost" if gost else "bip-sync"
    return Variant(name, process, f"http://127.0.0.1:{gateway_port}/{path}/", next_body)


def run_pass(variant: Variant, args: argparse.Namespace) -> None:
    """Send one pass of requests to ``variant`` and record its gateway CPU per message."""
    process = psutil.Process(variant.process.pid)
    before = cpu_seconds(process)
    run = drive(variant.name, variant.url, variant.next_body, args.requests, args.concurrency, args.time_limit)
    if run.errors:
        raise SystemExit(f"{variant.name}: {run.errors} requests failed, the first with {run.first_error}")
    variant.cpu_ms.append((cpu_seconds(process) - before) / run.requests * 1000)
    variant.runs.append(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="requests per variant and pass")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per pass at most")
    parser.add_argument("--messages", type=int, default=300, help="messages per algorithm and pass, in-process")
    args = parser.parse_args()
    provider_port = free_port()
    provider = subprocess.Popen([sys.executable, "-m", "emulators", "run", "sync-provider", "--port", str(provider_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    variants: list[Variant] = []
    try:
        wait_until_up(f"http://127.0.0.1:{provider_port}/")
        variants = [start_variant(name, args, provider_port) for name in ("unsigned", "RSA-2048", "P-256", "GOST-2004")]
        for variant in variants:
            drive("warm-up", variant.url, variant.next_body, WARM_UP, args.concurrency, args.time_limit)
        # Passes interleave the variants, so a change in the machine's speed touches all three alike.
        for _ in range(args.passes):
            for variant in variants:
                run_pass(variant, args)
    finally:
        for process in [provider, *(variant.process for variant in variants)]:
            process.terminate()
            process.wait(timeout=60)
    print(f"signed vs unsigned SendMessage: {args.passes} passes x {args.requests} requests per variant, {args.concurrency} "
          f"client threads, gateway 2 worker processes, SQLite, {os.cpu_count()} cores (median pass)")
    print(f"{'':10}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'gateway CPU ms/msg':>21}{'over unsigned':>15}   passes")
    base = statistics.median(variants[0].cpu_ms)
    for variant in variants:
        run, cpu_ms = median_run(variant.runs), statistics.median(variant.cpu_ms)
        passes = ", ".join(f"{value:.2f}" for value in variant.cpu_ms)
        print(f"{variant.name:10}{run.throughput:8.0f}{run.percentile(0.5):9.2f}{run.percentile(0.99):9.2f}{cpu_ms:21.2f}"
              f"{cpu_ms - base:15.2f}   {passes}")
    rsa = statistics.median(variants[1].cpu_ms)
    print(f"signed round trip with RSA-2048 (verify the caller, sign the answer): {rsa:.2f} ms gateway CPU "
          f"(target <= {TARGET_SIGNED_CPU_MS} ms: {'met' if rsa <= TARGET_SIGNED_CPU_MS else 'NOT met'})")
    gost = statistics.median(variants[3].cpu_ms)
    print(f"signed round trip with GOST 34.310-2004: {gost:.2f} ms gateway CPU, {gost / rsa:.2f} x RSA-2048 "
          f"(target <= {TARGET_GOST_OVER_RSA} x: {'met' if gost / rsa <= TARGET_GOST_OVER_RSA else 'NOT met'})")
    print(f"in-process, {args.passes} passes x {args.messages} messages per algorithm (median pass):")
    report(measured(args.messages, args.passes))


if __name__ == "__main__":
    main()
