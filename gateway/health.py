"""``GET /health``: what a load balancer and an operator need to know, cheap enough to poll every second.

Everything the report takes from the database (maintenance switch, queue depth, delivery points' breakers)
comes from one statement, cached for ``ttl`` seconds per process, so a poll per second per balancer costs at
most one query per second per process; a failed query is cached too, so a database outage does not turn every
poll into a connection attempt. The key's validity, the CRLs' freshness and the OCSP client's state (its
responders' last outcome, its cached answers) are read from memory.

Status codes: 503 when the database is unavailable or maintenance mode is on (take this gateway out of
rotation); 200 otherwise, with ``status`` "degraded" and the ``problems`` listed when something needs an
operator but traffic can still be served (an expired signing key, a stale CRL, an OCSP responder that failed at
its last try, switched-off delivery points).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography import x509
from sqlalchemy import Engine

from gateway.maintenance import MAINTENANCE_ROW, MaintenanceState
from gateway.security import gost3411
from gateway.security.trust import TrustStore
from gateway.store.status import status_statement
from journals.times import as_utc, iso_utc

if TYPE_CHECKING:  # only the type: the report is whatever the client's report() says
    from gateway.security.ocsp import OcspClient

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STALE_LIMIT_TTLS = 10  # a status not refreshed for this many TTLs is no status
DEFAULT_TTL_SECONDS = 1.0


@dataclass(frozen=True)
class DatabaseStatus:
    """The database-derived part of the gateway's state, read in one statement."""

    maintenance: MaintenanceState
    queue_depth: int
    breakers: dict[int, str] = field(default_factory=dict)  # delivery point id -> closed, open, half_open

    @property
    def switched_off(self) -> list[int]:
        """Delivery points whose breaker has switched them off (open, or waiting for a half-open probe)."""
        return sorted(point for point, state in self.breakers.items() if state != CLOSED)


def read_database_status(engine: Engine) -> DatabaseStatus:
    """Read the database-derived status now (one query)."""
    with engine.connect() as connection:
        rows = connection.execute(status_statement(MAINTENANCE_ROW)).all()
    clock = datetime.now(UTC)
    queue_depth, maintenance, breakers = 0, MaintenanceState(False), {}
    for kind, number, flag, text, at in rows:
        if kind == "queue":
            queue_depth = int(number)
        elif kind == "maintenance":
            maintenance = MaintenanceState(bool(flag), text, as_utc(at) if at is not None else None)
        elif flag:
            # A point whose probe time has come is half open: the next delivery to it is a probe.
            probe_after = as_utc(at) if at is not None else None
            breakers[int(number)] = HALF_OPEN if probe_after is not None and probe_after <= clock else OPEN
        else:
            breakers[int(number)] = CLOSED
    return DatabaseStatus(maintenance, queue_depth, breakers)


class StatusProbe:
    """The database-derived status, cached for ``ttl`` seconds in this process; None while the database is
    unavailable. While polls keep coming no poll waits on the database: the one that finds the status stale
    starts a refresh in the background and answers with the previous status, so ``/health`` stays fast while the
    database is slow or every connection is busy. A status older than ``STALE_LIMIT_TTLS`` TTLs is not answered
    with: the first poll after a quiet spell (or the first of all) reads it itself, and while a background
    refresh hangs that long the database counts as unavailable."""

    def __init__(self, engine: Engine, ttl: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()  # guards the start of a background refresh
        self._read_lock = threading.Lock()  # one poll reads at a time when there is nothing recent to answer with
        self._refreshing = False
        self._value: DatabaseStatus | None = None
        self._read_at: float | None = None

    def current(self) -> DatabaseStatus | None:
        """The cached status; a stale one is refreshed in the background."""
        if self._fresh():
            return self._value
        if self._too_old():
            if self._refreshing:
                return None  # the background refresh has hung for the whole limit
            with self._read_lock:
                if self._too_old():
                    self._store(self._read())
            return self._value
        with self._lock:
            start, self._refreshing = not self._refreshing, True
        if start:
            threading.Thread(target=self._refresh, name="health-refresh", daemon=True).start()
        return self._value

    def _too_old(self) -> bool:
        return self._read_at is None or self._clock() - self._read_at > self._ttl * STALE_LIMIT_TTLS

    def _refresh(self) -> None:
        try:
            self._store(self._read())
        finally:
            with self._lock:
                self._refreshing = False

    def _store(self, value: DatabaseStatus | None) -> None:
        self._value, self._read_at = value, self._clock()

    def _fresh(self) -> bool:
        return self._read_at is not None and self._clock() - self._read_at < self._ttl

    def _read(self) -> DatabaseStatus | None:
        try:
            return read_database_status(self._engine)
        except Exception as exc:
            # The class name only: a driver's message may carry the connection string.
            log.warning("health check: database unavailable (%s)", exc.__class__.__name__)
            return None


class HealthCheck:
    """Builds the ``GET /health`` report from the cached database status, the signing key, the CRLs and the OCSP
    client's responders and cached answers."""

    def __init__(
        self, probe: StatusProbe, signing_certificate: x509.Certificate | None, trust: TrustStore | None,
        ocsp: OcspClient | None = None, gost_signing_certificate: x509.Certificate | None = None,
    ) -> None:
        self._probe = probe
        self._ocsp = ocsp
        # Report name -> the certificate of that key of the gateway's (RSA or ECDSA, and GOST), or None.
        self._keys = {"signing_key": signing_certificate, "gost_signing_key": gost_signing_certificate}
        self._trust = trust

    def report(self) -> tuple[int, dict[str, Any]]:
        """The HTTP status and the JSON report."""
        clock = datetime.now(UTC)
        status = self._probe.current()
        problems: list[str] = []
        keys = {}
        for name, certificate in self._keys.items():
            not_after = certificate.not_valid_after_utc if certificate is not None else None
            keys[name] = {"configured": certificate is not None, "not_after": iso_utc(not_after)}
            if not_after is not None and not_after <= clock:
                problems.append(f"the {name.replace('_', ' ')}'s certificate has expired")
        crls = []
        for source, next_update in (self._trust.crl_freshness() if self._trust else {}).items():
            # None: not loaded yet (CRLs load at the first signature check) or never loaded successfully.
            fresh = None if next_update is None else next_update > clock
            if fresh is False:
                problems.append(f"CRL {source} is past its nextUpdate")
            crls.append({"source": source, "next_update": iso_utc(next_update), "fresh": fresh})
        # An operator sees here whether Botan is in use: without it GOST hashing costs 2.5 times the CPU.
        report: dict[str, Any] = {**keys, "gost_hash": gost3411.hash_implementation(), "crls": crls,
                                  "checked_at": iso_utc(clock)}
        if self._ocsp is not None:
            report["ocsp"] = self._ocsp.report()
            for responder in report["ocsp"]["responders"]:
                if responder["state"] == "unreachable":
                    problems.append(f"OCSP responder {responder['url']} was unreachable at its last try")
                elif responder["state"] == "bad_response":
                    problems.append(f"OCSP responder {responder['url']} gave no usable answer at its last try")
        if status is None:
            report.update(status="unavailable", database="unavailable", maintenance=None, queue_depth=None,
                          switched_off_delivery_points=None, problems=problems + ["the database is unavailable"])
            return 503, report
        if status.switched_off:
            problems.append(f"{len(status.switched_off)} delivery point(s) switched off by their breaker")
        report.update(
            database="ok",
            maintenance={"on": status.maintenance.enabled, "reason": status.maintenance.reason,
                         "since": iso_utc(status.maintenance.changed_at) if status.maintenance.enabled else None},
            queue_depth=status.queue_depth,
            switched_off_delivery_points=status.switched_off,
            problems=problems,
        )
        if status.maintenance.enabled:
            report["status"] = "maintenance"
            return 503, report
        report["status"] = "degraded" if problems else "ok"
        return 200, report

