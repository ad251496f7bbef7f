"""The HTTP API (``/api/v1``): FastAPI routers over the same services as the pages.

``create_api()`` builds the application; :mod:`jarvis.asgi` mounts it next to the Streamlit UI
in one process. Every route parses its input into a pydantic model, calls one service, and
serialises the result; every error becomes RFC 9457 problem+json (:mod:`jarvis.api.problems`).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from jarvis.api.limits import BodySizeLimit
from jarvis.api.problems import document_problems, install_problem_handlers
from jarvis.api.routes import (
    admin,
    api_keys,
    auth,
    browser,
    chat,
    graph,
    health,
    mcp_servers,
    memory,
    openai_compat,
    secrets,
    tool_permissions,
    usage,
)
from jarvis.config import Settings

API_PREFIX = "/api/v1"

DESCRIPTION = """
Jarvis over HTTP: sign in, chat with the agent (runs stream as Server-Sent Events and can be
resumed with `Last-Event-ID`), and everything the pages do.

Authenticate with `Authorization: Bearer <token>`: an access token from `POST /auth/login`
(refresh it with `POST /auth/refresh`) or a personal API key (`jrv_...`, from `POST /api-keys`,
the Account page or `jarvis api-keys create`). Errors are `application/problem+json` (RFC 9457)
with a stable `code`. USD amounts are decimal strings with six decimals (`"0.012345"`).

Any OpenAI client works against `/v1` (or `/api/v1/openai/v1`: `GET /models`,
`POST /chat/completions`, streaming included) with a personal API key as its API key; errors
there take OpenAI's shape.
"""


def create_api(settings: Settings) -> FastAPI:
    """The ``/api/v1`` application (its services are set on ``app.state.services``)."""
    app = FastAPI(
        title="Jarvis API",
        version="1",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    install_problem_handlers(app)
    document_problems(app)
    for router in (
        health.router,
        auth.router,
        browser.router,
        chat.router,
        api_keys.router,
        secrets.router,
        tool_permissions.router,
        usage.router,
        memory.router,
        graph.router,
        admin.router,
        mcp_servers.router,
        openai_compat.router,
    ):
        app.include_router(router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            max_age=600,
        )
    return app
