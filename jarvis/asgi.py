"""One process, one port: the Streamlit UI (``st.App``) with the HTTP API mounted at
``/api/v1`` and the MCP server at ``/mcp``, served by uvicorn (``jarvis up``; the Docker image runs the same).

The lifespan builds the process's services once — engine, run workers, the event listener —
and hands the same object to the API and to the pages; on shutdown the runs in progress end
with a reason and the listener stops.

    uvicorn --factory jarvis.asgi:create_app --no-proxy-headers
"""

from __future__ import annotations

import gc
import importlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import streamlit as st
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from jarvis.api import API_PREFIX, create_api
from jarvis.api.mcp import MCP_PATH, JarvisMCP
from jarvis.api.routes.openai_compat import PREFIX as OPENAI_PREFIX
from jarvis.bootstrap import build_services, provide_services
from jarvis.config import Settings, get_settings
from jarvis.logs import configure_logging

log = logging.getLogger(__name__)

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app.py"

#: What the pages import beyond the server's own modules (the sign-in page's helpers first):
#: imported on a thread of their own while the server starts, so no visitor waits for them.
WARM_MODULES = (
    "jarvis.ui.session",
    "jarvis.ui.guard",
    "jarvis.ui.navigation",
    "jarvis.ui.components",
    "jarvis.ui.services",
    "jarvis.ui.markdown",
    "pyarrow",
    "pandas",
    "plotly.express",
    "streamlit_echarts",
    "jarvis.ui.graph_view",
    "jarvis.ui.run_view",
    "jarvis.ui.composer",
    # the provider SDKs (seconds), imported by the first run otherwise
    "jarvis.llm.openai_provider",
    "jarvis.llm.anthropic_provider",
)


#: How long startup waits for :func:`warm_imports` before serving anyway (on a very slow disk
#: the rest goes on in the background instead of holding the server back).
WARM_WAIT_SECONDS = 30.0


def warm_imports(modules: tuple[str, ...] = WARM_MODULES) -> threading.Thread:
    """Import ``modules`` in a daemon thread (a failure is logged, never raised): the first
    page that needs pandas or plotly then finds them loaded instead of paying ~1-2 s."""

    def run() -> None:
        started = time.perf_counter()
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - warming is an optimisation only
                log.warning("could not pre-import %s", name, exc_info=True)
        try:
            # Streamlit checks once per process, on the first element a page draws, whether it
            # runs in a REPL: a walk of the whole call stack with every module's source path
            # resolved (~0.4 s with this many modules). Done here, not in the first visitor's page.
            from streamlit import delta_generator

            delta_generator._maybe_print_use_warning()
        except Exception:  # noqa: BLE001 - warming is an optimisation only
            log.warning("could not warm Streamlit's first-run check", exc_info=True)
        # Everything imported so far lives as long as the process: out of the collector's
        # sight, a full collection no longer walks millions of module objects.
        gc.freeze()
        log.info("page modules warmed", extra={"seconds": round(time.perf_counter() - started, 2)})

    thread = threading.Thread(target=run, name="jarvis-warm-imports", daemon=True)
    thread.start()
    return thread


def create_app(settings: Settings | None = None) -> Any:
    """The ASGI application (a ``streamlit.App``, i.e. Starlette)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    api = create_api(settings)
    mcp = JarvisMCP(lambda: api.state.services)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
        services = await anyio.to_thread.run_sync(build_services, settings)
        api.state.services = services
        provide_services(services)
        # Serve once the pages' modules are in: the first visitor then gets a warm page (the
        # sign-in form in ~0.8 s, not 1.6-2.8 s sharing the CPU with the imports), and "healthy"
        # means ready. Startup takes ~1-2 s longer.
        await anyio.to_thread.run_sync(warm_imports().join, WARM_WAIT_SECONDS)
        log.info("jarvis is serving", extra={"api": API_PREFIX, "mcp": MCP_PATH})
        try:
            async with mcp.session_manager.run():
                yield {}
        finally:
            await anyio.to_thread.run_sync(services.shutdown)
            provide_services(None)
            services.engine.dispose()

    routes = [
        Mount(API_PREFIX, app=api),
        Mount(OPENAI_ALIAS, app=openai_alias(api)),
        Route(MCP_PATH, endpoint=mcp),
    ]
    return st.App(APP_SCRIPT, routes=routes, lifespan=lifespan)


#: Where OpenAI clients look by default (``base_url=http://host/v1``): the same routes as
#: ``/api/v1/openai/v1``.
OPENAI_ALIAS = "/v1"


def openai_alias(api: ASGIApp) -> ASGIApp:
    """``/v1/chat/completions`` and ``/v1/models`` answered by the API's OpenAI-compatible
    routes (``/api/v1/openai/v1/...``); any other ``/v1`` path is theirs to refuse (404)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            rest = scope["path"][len(scope.get("root_path", "")) :]
            path = API_PREFIX + OPENAI_PREFIX + rest
            scope = dict(scope, path=path, raw_path=path.encode(), root_path=API_PREFIX)
        await api(scope, receive, send)

    return app
