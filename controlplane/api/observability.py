"""Request ids, request counting and ``/metrics``.

Every request gets an id (the caller's ``X-Request-ID`` when it is sane, else
a new one). It is bound into structlog's context, so log lines and audit
events written while serving the request carry it, and it is echoed back.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import structlog
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controlplane.domain.fields import State
from controlplane.metrics import HTTP_REQUESTS, REGISTRY
from controlplane.store.tables import ExecutionRow, PlanRow

_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContext:
    """ASGI middleware: request id in and out, structlog context, request counter."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request inside its own logging context."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            HTTP_REQUESTS.labels(scope["method"], template, str(status)).inc()
            structlog.contextvars.clear_contextvars()


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time, right for any number of workers."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Executions by state, queue depth and plans awaiting review."""
        with Session(self.engine) as session:
            counts = dict(
                session.exec(
                    select(ExecutionRow.state, func.count()).group_by(col(ExecutionRow.state))
                ).all()
            )
            pending = session.exec(
                select(func.count()).select_from(PlanRow).where(col(PlanRow.status) == "pending")
            ).one()
        by_state = GaugeMetricFamily(
            "flowplane_executions", "Executions by current state", labels=["state"]
        )
        for state in State:
            by_state.add_metric([state.value], counts.get(state.value, 0))
        yield by_state
        yield GaugeMetricFamily(
            "flowplane_queue_depth",
            "Executions waiting for a worker",
            value=counts.get(State.QUEUED.value, 0),
        )
        yield GaugeMetricFamily(
            "flowplane_plans_pending", "Plans waiting for approval", value=pending
        )


router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text format. Public, like /healthz: it names no flows and no secrets."""
    database: CollectorRegistry = request.app.state.metrics_registry
    body = generate_latest(REGISTRY) + generate_latest(database)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def database_registry(engine: Engine) -> CollectorRegistry:
    """A registry holding the scrape-time database collector for ``engine``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(engine))
    return registry
