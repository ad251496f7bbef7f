"""``/health`` (the process answers) and ``/ready`` (database reachable, migrations at head)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from jarvis.api.deps import ServicesDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    database: str
    migration: str
    revision: str | None = None
    head: str | None = None


@router.get("/health", response_model=Health, summary="The process is up")
def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Ready,
    summary="Ready for traffic: database reachable and migrated",
    responses={503: {"model": Ready, "description": "Not ready"}},
)
def ready(services: ServicesDep) -> JSONResponse:
    state = services.health.readiness()
    body = Ready(
        ready=state.ready,
        database=state.database,
        migration=state.migration,
        revision=state.revision,
        head=state.head,
    )
    return JSONResponse(body.model_dump(), status_code=200 if state.ready else 503)
