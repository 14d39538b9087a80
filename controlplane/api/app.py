"""The app factory: ``create_app(settings)`` builds a configured FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import Engine

from controlplane import __version__
from controlplane.api.errors import install_error_handlers
from controlplane.api.limits import BodySizeLimit
from controlplane.api.observability import RequestContext, database_registry
from controlplane.api.observability import router as metrics_router
from controlplane.api.routes import (
    audit,
    executions,
    flows,
    gitops,
    health,
    kv,
    namespace_files,
    namespaces,
    plugins,
    secrets,
    tokens,
    whoami,
)
from controlplane.runners.sandbox import Sandbox
from controlplane.services.access import ensure_admin_token
from controlplane.services.gitops.plans import recover_plans
from controlplane.services.gitops.poller import Poller
from controlplane.services.loop import STALE_FLOOR_SECONDS, BackgroundLoop, LoopRegistry
from controlplane.services.polling import PollingTriggers
from controlplane.services.scheduler import Scheduler
from controlplane.services.sealing import register_recipient
from controlplane.services.secrets import Keyring, load_keyring
from controlplane.services.worker.worker import Worker
from controlplane.settings import Settings
from controlplane.store.audit import checkpoint_if_due, signer_from_identity
from controlplane.store.db import create_engine, migrate
from controlplane.ui import install_ui


def create_app(
    settings: Settings | None = None, *, engine: Engine | None = None, workers: int | None = None
) -> FastAPI:
    """Build the API app; migrations run before the first request is served.

    ``engine`` lets tests share one engine across apps; by default one is made
    from ``settings``. ``workers`` embedded workers run executions while the app
    is up (default: ``settings.workers``).
    """
    settings = settings or Settings()
    owns_engine = engine is None
    app_engine = engine if engine is not None else _make_engine(settings)
    engine = app_engine

    embedded = [
        Worker(
            app_engine,
            settings.data_dir.resolve(),
            lease=timedelta(seconds=settings.lease_seconds),
            sandbox=Sandbox.from_settings(settings),
        )
        for _ in range(settings.workers if workers is None else workers)
    ]

    background = _background(app_engine, settings)
    loops = LoopRegistry()
    for service in background:
        loops.add(service.loop)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for worker in embedded:
            worker.start()
            _watch_worker(loops, worker, settings.lease_seconds)
        for service in background:
            service.start()
        anchor.start()
        yield
        anchor.stop(5)
        for service in background:
            service.stop()
        for worker in embedded:
            worker.stop()
        reader = getattr(app.state, "read_engine", None)  # made on first read (api.auth)
        if reader is not None and reader is not app_engine:
            reader.dispose()
        if owns_engine:  # an engine handed in belongs to the caller
            app_engine.dispose()

    migrate(engine)
    _bootstrap_admin(engine, settings)
    # Any process may now seal SECRET inputs to this server's key.
    keyring = load_keyring(settings.data_dir.resolve())
    register_recipient(engine, keyring)
    # An apply a crash interrupted is finished, or failed with its reason, before serving.
    recover_plans(engine)
    anchor = _audit_anchor(app_engine, keyring)
    loops.add(anchor)
    app = FastAPI(
        title="Flowplane",
        version=__version__,
        summary="GitOps control plane for Kestra-compatible flows",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.keyring = keyring
    app.state.metrics_registry = database_registry(engine)
    app.state.loops = loops
    app.state.workers = embedded
    install_error_handlers(app)
    for router in _ROUTERS:
        app.include_router(router)
    install_ui(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext)
    return app


_ROUTERS = (
    health.router,
    namespaces.router,
    secrets.router,
    secrets.recipient_router,
    kv.router,
    namespace_files.router,
    flows.router,
    executions.router,
    gitops.router,
    audit.router,
    tokens.router,
    whoami.router,
    plugins.router,
    metrics_router,
)


def _make_engine(settings: Settings) -> Engine:
    """The engine ``settings`` name (SQLite in the data directory by default)."""
    if settings.database_url is None:
        settings.prepare()
    return create_engine(settings.resolved_database_url())


def _watch_worker(loops: LoopRegistry, worker: Worker, lease_seconds: float) -> None:
    """Let readiness see an embedded worker die or hang.

    A run in hand may take long: the worker's heartbeat, which renews the
    lease every third of it, is what keeps ``last_tick`` fresh meanwhile.
    """
    loops.watch(
        f"worker:{worker.worker_id}",
        worker.is_alive,
        lambda: worker.last_tick,
        max_age=max(3 * lease_seconds, STALE_FLOOR_SECONDS),
    )


def _background(engine: Engine, settings: Settings) -> list[Scheduler | PollingTriggers | Poller]:
    """The scheduler, the polling-trigger loop and the Git poller, as the settings ask."""
    scheduler = Scheduler(engine) if settings.scheduler else None
    # Plugin polling triggers (JDBC, Git, ...) start runs as schedules do.
    polling = (
        PollingTriggers(engine, settings.data_dir.resolve(), work_dir=settings.work_dir)
        if settings.scheduler
        else None
    )
    poller = Poller(engine, settings.data_dir.resolve() / "git") if settings.poll_sources else None
    return [b for b in (scheduler, polling, poller) if b is not None]


def _audit_anchor(engine: Engine, keyring: Keyring) -> BackgroundLoop:
    """The loop that signs the audit chain's head now and then (docs/access.md)."""
    signer = signer_from_identity(str(keyring.identity))
    return BackgroundLoop(
        "audit-checkpoint",
        60.0,
        lambda: checkpoint_if_due(engine, signer, every=timedelta(minutes=10)),
    )


def _bootstrap_admin(engine: Engine, settings: Settings) -> None:
    """Make sure someone can sign in; a newly made admin token is printed here, once."""
    configured = settings.admin_token.get_secret_value() if settings.admin_token else None
    secret = ensure_admin_token(engine, configured)
    if secret is not None:
        # Printed to the console, never logged: log lines are shipped and kept.
        print(  # noqa: T201
            "Flowplane made an admin API token. It is shown only this once; store it now:\n"
            f"    {secret}\n"
            "Use it as 'Authorization: Bearer <token>', or set FLOWPLANE_ADMIN_TOKEN.",
            flush=True,
        )
