"""Prometheus metrics: ``GET /metrics`` in the text exposition format (prometheus-client).

Instruments, moved on the message path without touching the database:

- ``gateway_messages_total{channel, service, outcome}``: exchanges by channel (SYNC, ASYNC), service and outcome
  (the journal state, or the error code when there is one; ACCEPTED for an asynchronous message taken in);
- ``gateway_exchange_seconds{channel}``: histogram of the time from receipt to answer;
- ``gateway_delivery_attempts_total{delivery_point, result}``: the delivery worker's calls (delivered, failed,
  pending: an adapter's result still owed, throttled: postponed by the point's throttle, not a call).

Gauges computed at scrape time from the health check's cached database status (one query, at most once a
second per process): ``gateway_queue_depth``, ``gateway_breaker_state{delivery_point}`` (0 closed, 1 open,
2 half open), ``gateway_maintenance`` and ``gateway_database_up``.

Processes. Gunicorn workers and the delivery worker are separate processes. Without ``GATEWAY_METRICS_DIR`` each
process counts in memory and ``/metrics`` shows the counters of the one worker that answered; with it, every
process writes its counters to files in that folder (prometheus-client's multiprocess mode) and any worker's
``/metrics`` shows the sum over all of them. ``prepare_metrics_dir`` must run once before the processes start.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.health import HALF_OPEN, OPEN, DatabaseStatus

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BREAKER_VALUE = {OPEN: 1, HALF_OPEN: 2}
NO_SERVICE = "-"
OTHER_SERVICES = "other"
# A label value per service the caller named would let anyone grow the metrics without bound: a service is named
# only once the sender is authenticated and the service found, and at most this many distinct ones per process.
MAX_SERVICE_LABELS = 1000
UNRESOLVED_SERVICE_ERRORS = frozenset({"SCE001", "SCE002", "SCE004", "SCE012", "SCE018", "SCE019", "SCE026"})


class GatewayMetrics:
    """The instruments of one process, moved by the endpoints and the delivery worker."""

    def __init__(self) -> None:
        # In multiprocess mode the values live in files and this registry is never scraped.
        self.registry = CollectorRegistry()
        self._messages = Counter(
            "gateway_messages", "Exchanges by channel, service and outcome (state or error code).",
            ("channel", "service", "outcome"), registry=self.registry,
        )
        self._latency = Histogram(
            "gateway_exchange_seconds", "Time from receipt to answer, by channel.",
            ("channel",), buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self._attempts = Counter(
            "gateway_delivery_attempts", "Delivery worker calls by delivery point and result.",
            ("delivery_point", "result"), registry=self.registry,
        )
        self._services: set[str] = set()

    def exchange(self, channel: str, service_id: str | None, outcome: str, seconds: float) -> None:
        """Count one exchange (or refusal) and its duration."""
        service = NO_SERVICE if not service_id or outcome in UNRESOLVED_SERVICE_ERRORS else self._service_label(service_id)
        self._messages.labels(channel, service, outcome).inc()
        self._latency.labels(channel).observe(seconds)

    def delivery_attempt(self, delivery_point_id: int, result: str) -> None:
        """Count one outcome of the delivery worker for a delivery point."""
        self._attempts.labels(str(delivery_point_id), result).inc()

    def _service_label(self, service_id: str) -> str:
        # Unlocked on purpose: a race can only let the set grow a few labels past the cap.
        if service_id in self._services:
            return service_id
        if len(self._services) >= MAX_SERVICE_LABELS:
            return OTHER_SERVICES
        self._services.add(service_id)
        return service_id


_process_lock = threading.Lock()
_process_metrics: list[GatewayMetrics] = []  # at most one: Prometheus instruments are per process by nature


def process_metrics(metrics_dir: Path | None) -> GatewayMetrics:
    """This process's instruments, created on first use; with ``metrics_dir``, in multiprocess mode. The first
    call decides (every caller in one process passes the same setting)."""
    with _process_lock:
        if not _process_metrics:
            if metrics_dir is not None:
                _enable_multiprocess(metrics_dir)
            _process_metrics.append(GatewayMetrics())
        return _process_metrics[0]


def _enable_multiprocess(metrics_dir: Path) -> None:
    metrics_dir.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(metrics_dir)
    # prometheus-client chooses its value class from the environment when imported; choose again now that the
    # folder is known (no instrument exists yet in this process).
    values.ValueClass = values.get_value_class()


def prepare_metrics_dir(metrics_dir: Path) -> None:
    """Before the gateway's processes start (``gateway serve``): empty the folder of the previous run's files and
    put it in the environment the gunicorn workers and the delivery worker inherit."""
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(metrics_dir)


class _StatusCollector:
    """Gauges read at scrape time from the cached database status."""

    def __init__(self, status: Callable[[], DatabaseStatus | None]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        status = self._status()
        yield GaugeMetricFamily("gateway_database_up", "1 when the database answered the last health query.", value=int(status is not None))
        if status is None:
            return
        yield GaugeMetricFamily("gateway_queue_depth", "Pending delivery tasks (PUSH, status notifications, polls).", value=status.queue_depth)
        yield GaugeMetricFamily("gateway_maintenance", "1 while maintenance mode is on.", value=int(status.maintenance.enabled))
        breakers = GaugeMetricFamily(
            "gateway_breaker_state", "Breaker of each delivery point: 0 closed, 1 open, 2 half open.", labels=("delivery_point",)
        )
        for point_id, state in sorted(status.breakers.items()):
            breakers.add_metric((str(point_id),), BREAKER_VALUE.get(state, 0))
        yield breakers


class MetricsExporter:
    """Renders ``GET /metrics``: this process's instruments (or every process's, in multiprocess mode) and the
    database gauges."""

    def __init__(self, metrics: GatewayMetrics, metrics_dir: Path | None, status: Callable[[], DatabaseStatus | None]) -> None:
        self._metrics = metrics
        self._metrics_dir = metrics_dir
        self._status = _StatusCollector(status)

    content_type = CONTENT_TYPE_LATEST

    def render(self) -> bytes:
        """The exposition text."""
        scrape = CollectorRegistry()
        if self._metrics_dir is not None:
            MultiProcessCollector(scrape, path=str(self._metrics_dir))
        else:
            scrape.register(self._metrics.registry)
        scrape.register(self._status)
        return generate_latest(scrape)
