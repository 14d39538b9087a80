"""Liveness and readiness probes.

``/healthz`` says the process serves requests, nothing more: a failing
liveness probe restarts the pod, which would not fix a database outage.
``/readyz`` says this process is doing its work: the database answers, and
every background loop (scheduler, Git poller, embedded workers) is alive and
made progress recently. Its 503 body names what is wrong.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from controlplane.api.deps import EngineDep
from controlplane.api.schemas import Health
from controlplane.services.loop import LoopRegistry

router = APIRouter(tags=["health"])


_OK = Health(status="ok")


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up: answered on the event loop, so it also shows the loop is not stuck."""
    return _OK


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(engine: EngineDep, request: Request) -> Health | JSONResponse:
    """The database answers and every background loop is alive and recent; 503 otherwise.

    The 503 body adds ``loops``: ``{name: "dead" | "stale"}`` for each loop at fault.
    """
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return JSONResponse({"status": "database unavailable"}, status_code=503)
    loops: LoopRegistry | None = getattr(request.app.state, "loops", None)
    problems = loops.problems() if loops is not None else {}
    if problems:
        return JSONResponse({"status": "loops unavailable", "loops": problems}, status_code=503)
    return Health(status="ok")
