"""What the benchmarks share: free ports, waiting for servers, bounded load loops, CPU accounting."""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil
import urllib3

HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
# The SendMessage the signed benchmarks sign, with ``extra`` elements in its person record to size its Body.
SIGNED_ENVELOPE = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    '<ns2:SendMessage xmlns:ns2="http://bip.bee.kz/SyncChannel/v10/Types"><request><requestInfo>'
    "<messageId>{message_id}</messageId><serviceId>BenchService</serviceId>"
    "<messageDate>2026-11-22T12:00:00.000+05:00</messageDate>"
    "<sender><senderId>bench</senderId><password>bench-password</password></sender></requestInfo>"
    '<requestData><data><person xmlns="urn:bench"><iin>931002451325</iin><name>Test Testov</name>{extra}</person></data>'
    "</requestData></request></ns2:SendMessage></soapenv:Body></soapenv:Envelope>"
)


@dataclass
class Run:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    first_error: str = ""  # the status and fault code of the first failed request, to say why

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    def result(self) -> LoadResult:
        return LoadResult(self.requests, self.throughput, self.percentile(0.5), self.percentile(0.99), self.errors)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, seconds: float = 30.0) -> None:
    http = urllib3.PoolManager(retries=False)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            http.request("GET", url, timeout=1.0)
            return
        except urllib3.exceptions.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def drive(name: str, url: str, make_body: Callable[[], bytes], total: int, concurrency: int, time_limit: float) -> Run:
    """Send ``total`` requests from ``concurrency`` threads (stopping early at ``time_limit`` seconds)."""
    pool = urllib3.PoolManager(maxsize=concurrency, retries=False, timeout=30.0)
    latencies: list[float] = []
    errors = [0]
    first_error: list[str] = []
    counter = iter(range(total))
    lock = threading.Lock()
    stop_at = time.monotonic() + time_limit

    def worker() -> None:
        while time.monotonic() < stop_at:
            with lock:
                if next(counter, None) is None:
                    return
            body = make_body()
            started = time.perf_counter()
            response = pool.request("POST", url, body=body, headers=HEADERS)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if response.status != 200:
                    errors[0] += 1
                    if not first_error:
                        code = re.search(rb"<(?:\w+:)?(?:errorCode|faultcode)>([^<]{1,40})<", response.data)
                        first_error.append(f"HTTP {response.status} {code.group(1).decode() if code else ''}".strip())

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Run(name, len(latencies), time.perf_counter() - started, latencies, errors[0], "".join(first_error))


def cpu_seconds(process: psutil.Process) -> float:
    """CPU time (user + system) of a process and all its live children."""
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda run: run.throughput)[len(runs) // 2]


WRK_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class LoadResult:
    """One load run's figures, whichever client produced them."""

    requests: int
    throughput: float
    p50_ms: float
    p99_ms: float
    errors: int


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def drive_wrk(url: str, body: bytes, seconds: int, concurrency: int) -> LoadResult:
    """POST ``body`` to ``url`` for ``seconds`` over ``concurrency`` kept-alive connections with wrk."""
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(
        'wrk.method = "POST"\n'
        f"wrk.body = [[{body.decode()}]]\n"
        'wrk.headers["Content-Type"] = "text/xml; charset=utf-8"\n'
        'wrk.headers["SOAPAction"] = \'""\'\n'
    )
    script.close()
    output = subprocess.run(
        ["wrk", "-t2", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", script.name, url],
        check=True, capture_output=True, text=True, timeout=seconds + 60,
    ).stdout
    latency = {p: float(v) * _UNIT_MS[u] for p, v, u in WRK_LATENCY.findall(output)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return LoadResult(
        requests=int(re.search(r"(\d+) requests in", output).group(1)),
        throughput=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=latency.get("50", 0.0),
        p99_ms=latency.get("99", 0.0),
        errors=(int(errors.group(1)) if errors else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    )


@dataclass
class OpenLoopRun:
    """Latencies of a fixed-rate run, each measured from the moment its request was due (not sent), so that a
    server falling behind shows as latency instead of a slower schedule (no coordinated omission)."""

    name: str
    latencies: list[float]
    errors: int
    late_sends: int  # requests the client itself could not send within 5 ms of their time

    def percentile(self, p: float) -> float:
        """The ``p`` quantile of the latencies, in ms (NaN for a run with none)."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else float("nan")


def drive_at_rate(name: str, url: str, make_body: Callable[[], bytes], rate: float, seconds: float,
                  threads: int = 48) -> OpenLoopRun:
    """Send ``rate`` requests a second for ``seconds`` (open loop: due times fixed in advance), from ``threads``
    threads; every request has at most 30 s, so the run ends within ``seconds`` + 30 s."""
    total = int(rate * seconds)
    pool = urllib3.PoolManager(maxsize=threads, retries=False, timeout=30.0)
    bodies = [make_body() for _ in range(total)]
    latencies: list[float] = []
    errors, late = [0], [0]
    lock = threading.Lock()
    counter = iter(range(total))
    started = time.perf_counter() + 0.2

    def worker() -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            due = started + index / rate
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            elif wait < -0.005:
                with lock:
                    late[0] += 1
            try:
                response = pool.request("POST", url, body=bodies[index], headers=HEADERS)
                failed = response.status != 200
            except urllib3.exceptions.HTTPError:
                failed = True
            with lock:
                latencies.append(time.perf_counter() - due)
                errors[0] += failed

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    pool.clear()
    return OpenLoopRun(name, latencies, errors[0], late[0])
