"""Benchmark: durable sendMessage accepts per second, and PUSH delivery throughput, on SQLite and PostgreSQL.

For each database it starts ``gateway serve`` (without its delivery worker) and a PUSH recipient emulator as
subprocesses, loads a one-service registry, and sends REQUESTs from several client threads: every accept is a
committed transaction holding the message, its delivery task and its journal row. Then it starts one
``gateway worker`` and times the delivery of everything accepted to the unthrottled recipient. As a baseline in
the same run it times the same requests against the sync provider emulator (a SOAP server that stores nothing).
Every loop is bounded by a count and by a time limit.

The load comes from wrk when it is installed (``apt-get install wrk``): a Python client costs about 0.6 ms of
CPU per request on the same two cores, a quarter of what is being measured. Without wrk the Python client runs.

    .venv/bin/python bench/async_channel.py [--seconds 10] [--requests 3000] [--concurrency 8] [--postgres URL]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

import psutil

from common import LoadResult, cpu_seconds, drive, drive_wrk, free_port, have_wrk, wait_until_up

TARGET_ACCEPTS_PER_SECOND_PG = 1000
REGISTRY = """
organisations:
  - {{bin: "990140000011", name: Bench provider org, shortName: P}}
  - {{bin: "990140000022", name: Bench consumer org, shortName: C}}
deliveryPoints:
  - {{id: 1, url: "http://127.0.0.1:{recipient_port}/", callMode: 2, retryCount: 3, asyncCallTimeoutSec: 10}}
informationSystems:
  - {{senderId: provider, organisation: "990140000011", shortName: P, name: Provider}}
  - {{senderId: bench, organisation: "990140000022", shortName: B, name: Bench client, password: bench-password}}
services:
  - {{key: BenchAsync, name: Bench, ownerIS: provider, interactionMode: ASYNC, sendMode: PUSH, defaultDeliveryPoint: 1,
     users: [{{informationSystem: bench}}]}}
"""
ENVELOPE = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    '<ns2:sendMessage xmlns:ns2="http://bip.bee.kz/AsyncChannel/v10/Types"><request><messageInfo>'
    "<serviceId>BenchAsync</serviceId><messageType>REQUEST</messageType>"
    "<messageDate>2026-11-22T12:00:00.000+05:00</messageDate>"
    "<sender><senderId>bench</senderId><password>bench-password</password></sender>"
    "<properties><key>ref</key><value>{ref}</value></properties></messageInfo>"
    '<messageData><data><person xmlns="urn:bench"><iin>931002451325</iin><name>Test Testov</name></person></data>'
    "</messageData></request></ns2:sendMessage></soapenv:Body></soapenv:Envelope>"
)
SYNC_ENVELOPE = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    '<ns2:SendMessage xmlns:ns2="http://bip.bee.kz/SyncChannel/v10/Types"><request><requestInfo>'
    "<messageId>{ref}</messageId><serviceId>BenchAsync</serviceId><messageDate>2026-11-22T12:00:00Z</messageDate>"
    "<sender><senderId>bench</senderId></sender></requestInfo><requestData><data><person xmlns=\"urn:bench\">"
    "<iin>931002451325</iin><name>Test Testov</name></person></data></requestData></request></ns2:SendMessage>"
    "</soapenv:Body></soapenv:Envelope>"
)


BENCH_SCHEMA = "gateway_bench"


def bench_database(database_url: str) -> str:
    """A fresh place for the run: for PostgreSQL a schema of its own (never the tests' tables), emptied first."""
    if not database_url.startswith("postgresql"):
        return database_url
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {BENCH_SCHEMA} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {BENCH_SCHEMA}"))
    engine.dispose()
    return f"{database_url}{'&' if '?' in database_url else '?'}options=-csearch_path%3D{BENCH_SCHEMA}"


def count_messages(database_url: str) -> int:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        total = connection.scalar(select(func.count()).select_from(text("async_message")))
    engine.dispose()
    return int(total or 0)


def count_done(database_url: str) -> int:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        done = connection.scalar(select(func.count()).select_from(text("delivery_task")).where(text("state = 'DONE'")))
    engine.dispose()
    return int(done or 0)


def database_cpu() -> float:
    """CPU seconds of the local PostgreSQL server processes (0 for SQLite, which runs inside the gateway)."""
    total = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] and process.info["name"].startswith("postgres"):
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
    return total


def measure(database_url: str, args: argparse.Namespace) -> tuple[LoadResult, LoadResult, float, int, list[float]]:
    """Accepts, the stateless baseline, and deliveries per second for one database."""
    database_url = bench_database(database_url)
    workdir = Path(tempfile.mkdtemp(prefix="bench-async-"))
    recipient_port, gateway_port, provider_port = free_port(), free_port(), free_port()
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_PORT=str(gateway_port), GATEWAY_WORKERS=str(args.workers),
               GATEWAY_THREADS=str(args.threads), GATEWAY_LOG_LEVEL="warning", GATEWAY_DELIVERY_IN_SERVE="false",
               GATEWAY_DELIVERY_POLL_SECONDS="0.05", GATEWAY_DELIVERY_CONCURRENCY="200")
    (workdir / "registry.yaml").write_text(REGISTRY.format(recipient_port=recipient_port), encoding="utf-8")
    cli = [sys.executable, "-m", "gateway.cli"]
    subprocess.run([*cli, "registry", "load", str(workdir / "registry.yaml")], env=env, check=True, capture_output=True)
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [
        subprocess.Popen([sys.executable, "-m", "emulators", "run", "push-recipient", "--port", str(recipient_port)], **quiet),
        subprocess.Popen([sys.executable, "-m", "emulators", "run", "sync-provider", "--port", str(provider_port)], **quiet),
        subprocess.Popen([*cli, "serve"], **quiet),
    ]
    try:
        wait_until_up(f"http://127.0.0.1:{recipient_port}/")
        wait_until_up(f"http://127.0.0.1:{provider_port}/")
        wait_until_up(f"http://127.0.0.1:{gateway_port}/health")
        url = f"http://127.0.0.1:{gateway_port}/bip-async/"

        def message() -> bytes:
            return ENVELOPE.format(ref=uuid.uuid4().hex[:20]).encode()

        def stateless() -> bytes:
            return SYNC_ENVELOPE.format(ref=uuid.uuid4()).encode()

        provider_url = f"http://127.0.0.1:{provider_port}/"
        drive("warm-up", url, message, 200, args.concurrency, args.time_limit)
        gateway_process = psutil.Process(processes[2].pid)
        before = cpu_seconds(gateway_process), database_cpu()
        if args.client == "wrk":
            accepts = drive_wrk(url, message(), args.seconds, args.concurrency)
        else:
            accepts = drive("durable accepts", url, message, args.requests, args.concurrency, args.time_limit).result()
        cpu = [
            (cpu_seconds(gateway_process) - before[0]) / accepts.requests * 1000,
            (database_cpu() - before[1]) / accepts.requests * 1000,
        ]
        if args.client == "wrk":
            baseline = drive_wrk(provider_url, stateless(), args.seconds, args.concurrency)
        else:
            baseline = drive("stateless", provider_url, stateless, args.requests, args.concurrency, args.time_limit).result()
        total = count_messages(database_url)
        worker = subprocess.Popen([*cli, "worker"], **quiet)
        processes.append(worker)
        started = time.monotonic()
        deadline = started + args.time_limit
        while (done := count_done(database_url)) < total and time.monotonic() < deadline:
            time.sleep(0.2)
        delivered_per_second = done / (time.monotonic() - started)
        return accepts, baseline, delivered_per_second, total - done, cpu
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=["wrk", "python"], default="wrk" if have_wrk() else "python")
    parser.add_argument("--seconds", type=int, default=10, help="wrk: seconds per load phase")
    parser.add_argument("--requests", type=int, default=3000, help="python client: requests per load phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gateway worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gateway worker")
    parser.add_argument("--time-limit", type=float, default=180.0, help="seconds per phase at most")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help=f"PostgreSQL URL (the run uses a schema {BENCH_SCHEMA} of its own); '' to skip")
    args = parser.parse_args()
    databases = [f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench-async-')) / 'bench.db'}"]
    if args.postgres:
        databases.append(args.postgres)
    load = f"wrk, {args.seconds} s per phase" if args.client == "wrk" else f"python client, {args.requests} requests per phase"
    print(f"async channel benchmark: sendMessage REQUESTs, {load}, {args.concurrency} connections, "
          f"gateway {args.workers} workers x {args.threads} threads, 1 delivery worker x 200 deliveries at once, {os.cpu_count()} cores")
    print(f"{'database':12}{'accepts/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'baseline/s':>12}{'delivered/s':>13}"
          f"{'undelivered':>13}   CPU ms per accept: gateway / database server")
    failed = False
    for database_url in databases:
        accepts, baseline, delivered, missing, cpu = measure(database_url, args)
        name = database_url.split(":", 1)[0].split("+")[0]
        print(f"{name:12}{accepts.throughput:11.0f}{accepts.p50_ms:9.2f}{accepts.p99_ms:9.2f}"
              f"{baseline.throughput:12.0f}{delivered:13.0f}{missing:13d}   {cpu[0]:.2f} / {cpu[1]:.2f}")
        failed |= bool(accepts.errors or missing)
        if name == "postgresql":
            verdict = "met" if accepts.throughput >= TARGET_ACCEPTS_PER_SECOND_PG else "NOT met"
            print(f"target >= {TARGET_ACCEPTS_PER_SECOND_PG} durable accepts/s on PostgreSQL: {verdict}")
    if failed:
        raise SystemExit("errors or undelivered messages during the run")


if __name__ == "__main__":
    main()
