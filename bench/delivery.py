"""Benchmark: PUSH deliveries per second and CPU per delivery of one ``gateway worker`` process.

It fills a queue once with ``--messages`` accepted ``sendMessage`` REQUESTs through ``gateway serve`` (SQLite, or
PostgreSQL in a schema of its own), then, pass after pass, puts every task back in the queue and times one
``gateway worker`` delivering all of it to a lean recipient (``bench/lean_recipient.py`` on uvicorn: the recipient
is not what is measured). With ``--baseline-tree DIR`` the worker of the code checked out in DIR delivers the same
queue in alternate passes, interleaved, and the ratio is printed (the schema is this tree's: a baseline older than
its newest migration needs those migration files copied into it, or its worker stops at start). The clock starts at the first delivery (a
worker's start-up, its imports and keys, is not delivery) and stops when every task is done; the CPU is the worker
process's over the same span, and PostgreSQL's server processes' beside it. Every wait is bounded by ``--time-limit``.

    .venv/bin/python bench/delivery.py [--messages 4000] [--passes 3] [--baseline-tree DIR] [--postgres URL]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
from sqlalchemy import Engine, create_engine, text

from async_channel import ENVELOPE, REGISTRY, bench_database, database_cpu
from common import cpu_seconds, drive, free_port, wait_until_up

HERE = Path(__file__).resolve().parent.parent
TARGET_PER_SECOND = 1500
POLL_SECONDS = 0.05


@dataclass
class Worker:
    """The worker of one tree and what its passes measured."""

    name: str
    tree: Path
    rates: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    database_cpu_ms: list[float] = field(default_factory=list)  # PostgreSQL's server processes (0 on SQLite)


def requeue(engine: Engine) -> int:
    """Put every delivery back in the queue as the gateway accepted it; returns how many there are."""
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM delivery_task WHERE kind <> 'MESSAGE'"))
        connection.execute(
            text("UPDATE delivery_task SET state = 'PENDING', attempts = 0, lease_owner = NULL, lease_until = NULL, "
                 "last_error = NULL, next_attempt_at = :now"),
            {"now": datetime.now(UTC)},
        )
        connection.execute(text("UPDATE async_message SET state = 'ON_DELIVERY'"))
        return int(connection.scalar(text("SELECT count(*) FROM delivery_task")) or 0)


def count_done(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(text("SELECT count(*) FROM delivery_task WHERE state = 'DONE'")) or 0)


def deliver_once(worker: Worker, engine: Engine, env: dict[str, str], time_limit: float) -> None:
    """One pass: the queue refilled, ``worker``'s ``gateway worker`` delivering it, timed from its first delivery."""
    total = requeue(engine)
    errors = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker"], env=dict(env, PYTHONPATH=str(worker.tree)),
                               cwd=worker.tree, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        measured = psutil.Process(process.pid)
        deadline = time.monotonic() + time_limit
        while (first := count_done(engine)) == 0 and time.monotonic() < deadline:
            if process.poll() is not None:
                errors.seek(0)
                raise SystemExit(f"{worker.name} exited before delivering: {errors.read().decode(errors='replace')[-1500:]}")
            time.sleep(POLL_SECONDS / 5)
        started, cpu_before, database_before = time.monotonic(), cpu_seconds(measured), database_cpu()
        while (done := count_done(engine)) < total and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        elapsed, cpu = time.monotonic() - started, cpu_seconds(measured) - cpu_before
        database = database_cpu() - database_before
    finally:
        process.terminate()
        process.wait(timeout=60)
    if done < total:
        raise SystemExit(f"{worker.name}: {total - done} of {total} deliveries not done within {time_limit:.0f} s")
    worker.rates.append((total - first) / elapsed)
    worker.cpu_ms.append(cpu / (total - first) * 1000)
    worker.database_cpu_ms.append(database / (total - first) * 1000)


def fill_queue(database_url: str, workdir: Path, env: dict[str, str], messages: int, time_limit: float) -> None:
    """Accept ``messages`` REQUESTs through ``gateway serve`` (its own delivery worker off)."""
    cli = [sys.executable, "-m", "gateway.cli"]
    subprocess.run([*cli, "registry", "load", str(workdir / "registry.yaml")], env=env, cwd=HERE, check=True, capture_output=True)
    server = subprocess.Popen([*cli, "serve"], env=dict(env, GATEWAY_DELIVERY_IN_SERVE="false"), cwd=HERE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{env['GATEWAY_PORT']}/health")
        url = f"http://127.0.0.1:{env['GATEWAY_PORT']}/bip-async/"
        accepted = drive("fill", url, lambda: ENVELOPE.format(ref=uuid.uuid4().hex[:20]).encode(), messages, 8, time_limit).result()
        if accepted.errors:
            raise SystemExit(f"{accepted.errors} of {messages} sendMessage calls failed while filling the queue")
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000, help="deliveries per pass")
    parser.add_argument("--passes", type=int, default=3, help="passes per worker, interleaved")
    parser.add_argument("--baseline-tree", type=Path, default=None, help="a checkout whose worker runs in alternate passes")
    parser.add_argument("--postgres", default="", help="PostgreSQL URL (a schema gateway_bench of its own); SQLite if not given")
    parser.add_argument("--concurrency", type=int, default=200, help="GATEWAY_DELIVERY_CONCURRENCY of this worker")
    parser.add_argument("--max-concurrent-calls", type=int, default=1000, help="the recipient's maxConcurrentCalls")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per phase at most")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    database_url = bench_database(args.postgres) if args.postgres else f"sqlite:///{workdir / 'bench.db'}"
    recipient_port = free_port()
    (workdir / "registry.yaml").write_text(
        REGISTRY.format(recipient_port=recipient_port).replace("asyncCallTimeoutSec: 10}", f"asyncCallTimeoutSec: 10, maxConcurrentCalls: {args.max_concurrent_calls}}}"),
        encoding="utf-8",
    )
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_PORT=str(free_port()), GATEWAY_LOG_LEVEL="warning",
               GATEWAY_DELIVERY_POLL_SECONDS=str(POLL_SECONDS), GATEWAY_DELIVERY_CONCURRENCY=str(args.concurrency),
               GATEWAY_DELIVERY_THREADS="16")  # the threaded worker's setting, for a baseline tree that has it
    recipient = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
         "--lifespan", "off", "--host", "127.0.0.1", "--port", str(recipient_port), "--app-dir", str(HERE / "bench"), "lean_recipient:app"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    workers = [Worker("this worker", HERE)] + ([Worker("baseline worker", args.baseline_tree.resolve())] if args.baseline_tree else [])
    try:
        wait_until_up(f"http://127.0.0.1:{recipient_port}/")
        fill_queue(database_url, workdir, env, args.messages, args.time_limit)
        engine = create_engine(database_url)
        print(f"delivery benchmark: {args.messages} PUSH deliveries per pass, {args.passes} passes per worker, interleaved, "
              f"{database_url.split(':', 1)[0]}, this worker's concurrency {args.concurrency}, the recipient's maxConcurrentCalls "
              f"{args.max_concurrent_calls}, {os.cpu_count()} cores")
        for _ in range(args.passes):
            for worker in workers:
                deliver_once(worker, engine, env, args.time_limit)
        engine.dispose()
    finally:
        recipient.terminate()
        recipient.wait(timeout=30)
    print(f"{'worker':18}{'delivered/s':>13}{'CPU ms per delivery':>21}{'database server':>17}   passes (delivered/s)")
    for worker in workers:
        passes = " ".join(f"{rate:.0f}" for rate in worker.rates)
        print(f"{worker.name:18}{statistics.median(worker.rates):13.0f}{statistics.median(worker.cpu_ms):21.3f}"
              f"{statistics.median(worker.database_cpu_ms):17.3f}   {passes}")
    if len(workers) > 1:
        ratio = statistics.median(workers[0].rates) / statistics.median(workers[1].rates)
        print(f"this / baseline: {ratio:.2f}x the deliveries per second")
    verdict = "met" if statistics.median(workers[0].rates) >= TARGET_PER_SECOND else "NOT met"
    print(f"target >= {TARGET_PER_SECOND} deliveries/s per worker process: {verdict}")


if __name__ == "__main__":
    main()
