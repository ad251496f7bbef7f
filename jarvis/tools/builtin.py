"""Handlers of the built-in tools (their metadata — ids, descriptions, JSON schemas — lives in
:mod:`jarvis.tools.specs`).

A handler is ``handler(ctx, args) -> dict``: ``args`` were already validated against the tool's
JSON schema by the run engine (:mod:`jarvis.services.chat.tool_calls`); the result is
JSON-serialisable and bounded in size by it. What a handler may call is typed in
:mod:`jarvis.tools.ports`. Handlers raise :class:`jarvis.errors.ToolError` (or another ``JarvisError``) for
anything the model should hear about; they act as ``ctx.principal`` only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from jarvis.clock import Clock
from jarvis.errors import NotFoundError, ToolError
from jarvis.identity import Principal
from jarvis.tools.calculator import evaluate
from jarvis.tools.ports import (
    KnowledgeGraphTools,
    MemoryTools,
    SecretTools,
    ToolServices,
    UsageTools,
)
from jarvis.tools.registry import ToolRegistry
from jarvis.validation import clean_text, storable_text

TAVILY_URL = "https://api.tavily.com/search"
TAVILY_TIMEOUT_SECONDS = 15.0
MAX_RESULTS = 10
#: Longest text argument a tool takes (a memory's content may be longer: its own limit).
MAX_TEXT_ARG = 2000
MAX_MEMORY_ARG = 8000


@dataclass(frozen=True)
class BuiltinToolServices:
    """The services the built-in tools reach (wired by ``build_services``)."""

    clock: Clock
    memory: MemoryTools
    knowledge_graph: KnowledgeGraphTools
    usage: UsageTools
    secrets: SecretTools


@dataclass(frozen=True)
class ToolContext:
    """What a tool handler may use: who is acting, the services, the run it belongs to."""

    principal: Principal
    services: ToolServices
    run_id: uuid.UUID | None = None
    #: Injected in tests (an ``httpx.MockTransport``); None = the real network.
    http_transport: httpx.BaseTransport | None = None


ToolHandler = Callable[[ToolContext, dict[str, Any]], dict[str, Any]]


def _text(
    args: dict[str, Any], *names: str, multiline: bool = False, max_chars: int = MAX_TEXT_ARG
) -> str:
    """The first of ``names`` given as non-empty text, under the one text rule (a model gets
    the same clear refusal as a form: ``ValidationError`` is a ``JarvisError``)."""
    for name in names:
        value = args.get(name)
        if isinstance(value, str) and value.strip():
            return clean_text(value, field=name, max_chars=max_chars, multiline=multiline)
    raise ToolError(f"Missing argument: {names[0]}.")


def _int(args: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = args.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return max(low, min(high, int(value)))


def _to_dict(item: Any) -> Any:
    if hasattr(item, "to_dict"):
        return item.to_dict()
    if hasattr(item, "__dataclass_fields__"):
        return {k: getattr(item, k) for k in item.__dataclass_fields__}
    return item


# -- memory ------------------------------------------------------------------------------------


def memory_search(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    """Semantic search over the user's memories."""
    query = _text(args, "query", "text")
    k = _int(args, "k", 5, 1, MAX_RESULTS)
    hits = ctx.services.memory.search(ctx.principal, query, k=k)
    return {
        "query": query,
        "results": [
            {
                "id": str(h.id),
                "content": h.content,
                "score": round(float(h.score), 4),
                "created_at": h.created_at.isoformat() if h.created_at else None,
            }
            for h in hits
        ],
    }


def memory_store(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    """Store one memory for the user (source: the run that stored it)."""
    content = _text(args, "content", "text", "memory", multiline=True, max_chars=MAX_MEMORY_ARG)
    metadata = args.get("metadata") if isinstance(args.get("metadata"), dict) else None
    view = ctx.services.memory.store(
        ctx.principal,
        content,
        source=f"run:{ctx.run_id}" if ctx.run_id else None,
        metadata=metadata,
    )
    return {"stored": True, "id": str(view.id), "content": content}


# -- knowledge graph ---------------------------------------------------------------------------


def kg_lookup(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    """Entities matching the query, with their relations."""
    query = _text(args, "query", "name", "entity")
    limit = _int(args, "limit", 5, 1, MAX_RESULTS)
    found = ctx.services.knowledge_graph.lookup(ctx.principal, query, limit=limit)
    return {"query": query, "entities": [_to_dict(e) for e in found]}


def kg_add_fact(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    """Add ``subject -relation-> object`` to the user's graph (entities created as needed)."""
    subject = _text(args, "subject")
    relation = _text(args, "relation", "predicate")
    object_ = _text(args, "object", "object_")
    fact = ctx.services.knowledge_graph.add_fact(ctx.principal, subject, relation, object_)
    return {"added": True, "fact": _to_dict(fact)}


# -- time, arithmetic, usage -------------------------------------------------------------------


def current_time(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    """The current date and time (UTC, or the IANA time zone asked for)."""
    now: datetime = ctx.services.clock.now()
    zone_name = storable_text(args.get("timezone") or "UTC", 100)
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a 10,000-char name
        raise ToolError(f"Unknown time zone: {zone_name[:60]}.") from exc
    local = now.astimezone(zone)
    return {
        "timezone": str(zone_name),
        "iso": local.isoformat(timespec="seconds"),
        "date": local.date().isoformat(),
        "time": local.strftime("%H:%M:%S"),
        "weekday": local.strftime("%A"),
    }


def calculator(_ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    """Evaluate an arithmetic expression safely (no eval)."""
    expression = _text(args, "expression", "expr")
    return {"expression": expression, "result": evaluate(expression)}


def usage_report(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    """The user's own spend over the last ``days`` days."""
    days = _int(args, "days", 30, 1, 366)
    report = ctx.services.usage.usage_report(ctx.principal, days=days)
    return dict(report)


# -- web search (Tavily) -----------------------------------------------------------------------


def web_search(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    """Search the web with Tavily using the user's own Tavily key."""
    query = _text(args, "query")
    max_results = _int(args, "max_results", 5, 1, MAX_RESULTS)
    try:
        secret = ctx.services.secrets.reveal(ctx.principal, "tavily")
    except NotFoundError as exc:
        raise ToolError("Web search needs a Tavily API key: add one on the Secrets page.") from exc
    url = TAVILY_URL
    if secret.base_url:
        url = secret.base_url.rstrip("/") + "/search"
    try:
        with httpx.Client(timeout=TAVILY_TIMEOUT_SECONDS, transport=ctx.http_transport) as client:
            response = client.post(
                url,
                json={"query": query, "max_results": max_results, "search_depth": "basic"},
                headers={"Authorization": f"Bearer {secret.value}"},
            )
    except httpx.TimeoutException as exc:
        raise ToolError("Web search timed out.") from exc
    except httpx.HTTPError as exc:
        raise ToolError("Web search is unreachable right now.") from exc
    if response.status_code in (401, 403):
        raise ToolError("Tavily rejected the API key.")
    if response.status_code == 429:
        raise ToolError("Tavily is rate limiting requests; try again later.")
    if response.status_code >= 400:
        raise ToolError(f"Web search failed (HTTP {response.status_code}).")
    try:
        payload = response.json()
    except ValueError as exc:
        raise ToolError("Web search returned an unreadable answer.") from exc
    results = payload.get("results") if isinstance(payload, dict) else None
    return {
        "query": query,
        "results": [
            {
                "title": str(r.get("title", ""))[:300],
                "url": str(r.get("url", ""))[:500],
                "content": str(r.get("content", ""))[:1000],
            }
            for r in (results or [])[:max_results]
            if isinstance(r, dict)
        ],
    }


def bind_builtin_handlers(registry: ToolRegistry) -> None:
    """Attach the handlers to the registry's built-in tools (tools it lacks are skipped)."""
    for tool_id, handler in HANDLERS.items():
        if tool_id in registry and registry.handler(tool_id) is None:
            registry.bind(tool_id, handler)


HANDLERS: dict[str, ToolHandler] = {
    "memory_search": memory_search,
    "memory_store": memory_store,
    "kg_lookup": kg_lookup,
    "kg_add_fact": kg_add_fact,
    "current_time": current_time,
    "calculator": calculator,
    "usage_report": usage_report,
    "web_search": web_search,
}
