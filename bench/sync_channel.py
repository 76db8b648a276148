"""Benchmark: SendMessage through the gateway against the same provider called directly, in one run on loopback.

It starts the provider emulator and ``gateway serve`` (gunicorn) as subprocesses, loads a one-service registry,
then sends the same request straight to the provider and through the gateway, alternately, in several passes
with the same number of client threads. It prints throughput, p50/p99 latency, the CPU time per message of the
gateway (all gunicorn processes, journal write included) and of the provider (the baseline: what one SOAP
server costs for the same message), each as the median of the passes, and the ratios. Every loop is bounded by
a count and by a time limit. This machine is shared and noisy: compare figures of one run, not across runs.

    .venv/bin/python bench/sync_channel.py [--requests 2000] [--passes 3] [--concurrency 8] [--database-url URL]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psutil

from common import cpu_seconds, drive, free_port, median_run, wait_until_up

TARGET_CPU_MS = 2.0
REGISTRY = """
organisations:
  - {{bin: "990140000011", name: Bench provider org, shortName: P}}
  - {{bin: "990140000022", name: Bench consumer org, shortName: C}}
deliveryPoints:
  - {{id: 1, url: "http://127.0.0.1:{provider_port}/provider", callMode: 1}}
informationSystems:
  - {{senderId: provider, organisation: "990140000011", shortName: P, name: Provider}}
  - {{senderId: bench, organisation: "990140000022", shortName: B, name: Bench client, password: bench-password}}
services:
  - {{key: BenchService, name: Bench, ownerIS: provider, interactionMode: SYNC, defaultDeliveryPoint: 1,
     users: [{{informationSystem: bench}}]}}
"""
ENVELOPE = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    '<ns2:SendMessage xmlns:ns2="http://bip.bee.kz/SyncChannel/v10/Types"><request><requestInfo>'
    "<messageId>{message_id}</messageId><serviceId>BenchService</serviceId>"
    "<messageDate>2026-11-22T12:00:00.000+05:00</messageDate>"
    "<sender><senderId>bench</senderId><password>bench-password</password></sender>"
    "<properties><key>IIN</key><value>931002451325</value></properties></requestInfo>"
    '<requestData><data><person xmlns="urn:bench"><iin>931002451325</iin><name>Test Testov</name>'
    "<address>Astana, Mangilik El 8</address></person></data></requestData></request></ns2:SendMessage>"
    "</soapenv:Body></soapenv:Envelope>"
)


def make_body() -> bytes:
    return ENVELOPE.format(message_id=uuid.uuid4()).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per pass and path")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per phase at most")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="threads per gateway worker")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    provider_port, gateway_port = free_port(), free_port()
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_PORT=str(gateway_port),
               GATEWAY_WORKERS=str(args.workers), GATEWAY_THREADS=str(args.threads), GATEWAY_LOG_LEVEL="warning",
               GATEWAY_DELIVERY_IN_SERVE="false")
    registry_file = workdir / "registry.yaml"
    registry_file.write_text(REGISTRY.format(provider_port=provider_port), encoding="utf-8")
    gateway_cmd = [sys.executable, "-m", "gateway.cli"]
    subprocess.run([*gateway_cmd, "registry", "load", str(registry_file)], env=env, check=True, capture_output=True)
    provider = subprocess.Popen([*gateway_cmd, "emulators", "run", "sync-provider", "--port", str(provider_port)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gateway = subprocess.Popen([*gateway_cmd, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{provider_port}/")
        wait_until_up(f"http://127.0.0.1:{gateway_port}/health")
        provider_url = f"http://127.0.0.1:{provider_port}/provider"
        gateway_url = f"http://127.0.0.1:{gateway_port}/bip-sync/"
        warmup = min(200, args.requests)
        drive("warm-up direct", provider_url, make_body, warmup, args.concurrency, args.time_limit)
        drive("warm-up gateway", gateway_url, make_body, warmup, args.concurrency, args.time_limit)
        gateway_process, provider_process = psutil.Process(gateway.pid), psutil.Process(provider.pid)
        direct_runs, gateway_runs, gateway_cpu, provider_cpu = [], [], [], []
        for _ in range(args.passes):
            before = cpu_seconds(provider_process)
            direct_runs.append(drive("provider directly", provider_url, make_body, args.requests, args.concurrency, args.time_limit))
            provider_cpu.append((cpu_seconds(provider_process) - before) / direct_runs[-1].requests * 1000)
            before = cpu_seconds(gateway_process)
            gateway_runs.append(drive("through the gateway", gateway_url, make_body, args.requests, args.concurrency, args.time_limit))
            gateway_cpu.append((cpu_seconds(gateway_process) - before) / gateway_runs[-1].requests * 1000)
    finally:
        for process in (gateway, provider):
            process.terminate()
            process.wait(timeout=30)

    backend = database_url.split(":", 1)[0]
    print(f"sync channel benchmark: {args.passes} passes x {args.requests} requests per path, {args.concurrency} client "
          f"threads, gateway {args.workers} workers x {args.threads} threads, database {backend}, {os.cpu_count()} cores")
    print(f"{'':22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}   (median pass)")
    direct, through = median_run(direct_runs), median_run(gateway_runs)
    for run in (direct, through):
        print(f"{run.name:22}{run.throughput:10.0f}{run.percentile(0.50):10.2f}{run.percentile(0.99):10.2f}{run.errors:8d}")
    cpu_ms, provider_ms = statistics.median(gateway_cpu), statistics.median(provider_cpu)
    print(f"provider CPU per message: {provider_ms:.2f} ms (passes: {', '.join(f'{v:.2f}' for v in provider_cpu)})")
    print(f"gateway CPU per message:  {cpu_ms:.2f} ms (passes: {', '.join(f'{v:.2f}' for v in gateway_cpu)}; "
          f"target <= {TARGET_CPU_MS} ms: {'met' if cpu_ms <= TARGET_CPU_MS else 'NOT met'})")
    print(f"ratio gateway/direct: throughput {through.throughput / direct.throughput:.2f}, "
          f"p50 {through.percentile(0.5) / direct.percentile(0.5):.2f}, p99 {through.percentile(0.99) / direct.percentile(0.99):.2f}, "
          f"CPU per message gateway/provider {cpu_ms / provider_ms:.2f}")
    if any(run.errors for run in direct_runs + gateway_runs):
        raise SystemExit("errors during the run")


if __name__ == "__main__":
    main()
