"""Composition: builds the gateway's ASGI application (``gateway/endpoints/asgi.py``) from the settings: the
channels, their endpoints, keys and trust, the journal, health and metrics."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import Engine

from gateway.adapters.pool import AdapterPool
from gateway.channels.async_channel import AsyncChannel
from gateway.channels.sync_call import SyncChannel
from gateway.config import Settings
from gateway.db import make_engine
from gateway.delivery.adapter_provider import DeliveryPointCaller
from gateway.delivery.bulkhead import Bulkhead
from gateway.outbound.clients import backend_client, provider_client
from gateway.delivery.sync_provider import SoapProviderCaller
from gateway.endpoints.admission import Capacity
from gateway.endpoints.async_endpoint import AsyncEndpoint
from gateway.endpoints.memory import MemoryReturner
from gateway.endpoints.sync_endpoint import SyncEndpoint
from gateway.endpoints.asgi import GatewayApp
from gateway.health import HealthCheck, StatusProbe
from gateway.metrics import MetricsExporter, process_metrics
from gateway.security import gost
from gateway.security.callers import CallerSignatures
from gateway.security.keys import load_keys, load_trust_store
from gateway.security.passwords import SenderAuthenticator
from gateway.security.replay import ReplayGuard
from gateway.soap.contracts import ContractDocuments
from gateway.store.messages import MessageStore
from journals.logging_journal import LoggingJournal
from registry.snapshot import RegistryCache

def create_app(
    settings: Settings | None = None, engine: Engine | None = None, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> GatewayApp:
    """Build the application for ``settings`` (environment by default); the schema must already be migrated.
    ``clock`` is the time certificates are judged at: never configurable, only tests of NCA's expired material
    stop it inside their validity."""
    settings = settings or Settings()
    engine = engine or make_engine(settings.database_url, pool_size=settings.threads + 2)
    provider_http = provider_client(settings)
    blocking_threads = ThreadPoolExecutor(settings.threads, thread_name_prefix="blocking")
    keys = load_keys(settings)
    if keys.gost is not None or settings.trusted_gost_ca_file is not None:
        gost.warm_up()
    adapters = AdapterPool(backend_client(settings))
    trust = load_trust_store(settings, clock)
    signatures = CallerSignatures(ReplayGuard(engine, settings.replay_window_seconds), trust, clock)
    metrics = process_metrics(settings.metrics_dir)
    status_probe = StatusProbe(engine)
    registry = RegistryCache(engine, settings.registry_refresh_seconds)
    authenticator = SenderAuthenticator(settings.password_cache_seconds)
    journal = LoggingJournal(engine)
    channel = SyncChannel(
        registry=registry,
        authenticator=authenticator,
        provider=DeliveryPointCaller(
            SoapProviderCaller(provider_http, keys), adapters, Bulkhead(settings.max_provider_calls)
        ),
        signatures=signatures,
        can_sign=keys.any is not None,
        journal=journal,
    )
    body_bytes = Capacity(settings.max_bytes_in_flight)
    memory = MemoryReturner(lambda: body_bytes.in_use)

    async def started() -> None:
        asyncio.get_running_loop().set_default_executor(blocking_threads)

    async def stopped() -> None:
        try:
            await provider_http.close()
        finally:
            await adapters.close()

    def closed() -> None:
        journal.close()
        memory.close()
        blocking_threads.shutdown(wait=False)

    sync_endpoint = SyncEndpoint(channel, journal, settings.sync_timeout_seconds, keys, metrics)
    gost_endpoint = SyncEndpoint(channel, journal, settings.sync_timeout_seconds, keys, metrics, prefers_gost=True)
    async_channel = AsyncChannel(
        registry=registry, authenticator=authenticator, store=MessageStore(engine, journal),
        default_amount=settings.get_messages_default_amount, signatures=signatures, can_sign=keys.any is not None,
    )
    return GatewayApp(
        settings=settings,
        endpoints={
            "/bip-sync/": sync_endpoint,
            "/bip-sync-wss-gost/": gost_endpoint,
            "/bip-async/": AsyncEndpoint(async_channel, journal, keys, metrics),
        },
        contracts=ContractDocuments(settings.contracts_dir),
        health=HealthCheck(
            status_probe, keys.signer.certificate if keys.signer else None, trust, trust.ocsp if trust else None,
            keys.gost.certificate if keys.gost else None,
        ),
        metrics=MetricsExporter(metrics, settings.metrics_dir, status_probe.current),
        body_bytes=body_bytes,
        memory=memory,
        started=started,
        stopped=stopped,
        closed=closed,
    )
