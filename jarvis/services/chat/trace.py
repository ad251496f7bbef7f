"""One run as a trace (the way Langfuse shows one): its header — status, model, start, latency,
tokens, cost — and its steps in order: each model call with the prompt it was sent and what it
answered, each tool call with its arguments, result, duration and status.

Everything comes from what the database keeps: the run row, its event log (``model_call``
events since they exist; tool-call events), the ``tool_calls`` rows and the run's messages.
A run from before ``model_call`` events has its tool calls and its question and answer only
(``detailed`` is False). What the page shows goes through :func:`jarvis.redaction.redact`
first: keys, tokens, emails and card numbers are masked in a trace, as in logs.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jarvis.db.repositories.run_log import LoggedEvent
from jarvis.db.tables import AgentRun, ToolCall
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import NotFoundError
from jarvis.identity import Principal
from jarvis.redaction import redact, redact_value
from jarvis.services.chat.views import (
    JSONObject,
    ModelCallStep,
    PromptMessage,
    RunTrace,
    ToolCallStep,
    TraceStep,
)
from jarvis.services.usage.rules import zone

#: Events read per round trip while loading a run's log.
PAGE = 1000
#: A log longer than this is not read further (a trace of a runaway run stays a page).
MAX_EVENTS = 20_000
NOT_FOUND = "That run does not exist, or it is not yours."


class RunTraceService:
    """Builds the trace of one of the signed-in user's runs."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def trace(self, principal: Principal, run_id: uuid.UUID) -> RunTrace:
        """The run ``run_id`` with its steps in order. :class:`NotFoundError` when it does not
        exist or belongs to someone else (administrators included: a trace holds what the user
        wrote, which only the usage figures of are shared)."""
        with self._uow(principal) as uow:
            run = uow.runs.get(run_id)
            if run is None or run.user_id != principal.user_id:
                raise NotFoundError(NOT_FOUND)
            events: list[LoggedEvent] = []
            while len(events) < MAX_EVENTS:
                batch = uow.run_log.read(principal.user_id, run_id, len(events), PAGE)
                events += batch
                if len(batch) < PAGE:
                    break
            calls = uow.tool_calls.for_run(run_id)
            messages = uow.messages.for_run(run_id)
            question = next((m.content for m in messages if m.role == "user"), "")
            answer = next((m.content for m in reversed(messages) if m.role == "assistant"), "")
            tz = zone(uow.usage.timezone_of(principal.user_id))
            return build_trace(run, events, calls, question, answer, tz)


def build_trace(
    run: AgentRun,
    events: list[LoggedEvent],
    calls: list[ToolCall],
    question: str,
    answer: str,
    tz: ZoneInfo,
) -> RunTrace:
    """The trace of ``run`` from its log, tool-call rows and messages (no database); times in
    ``tz`` (the user's zone)."""
    steps: list[TraceStep] = []
    prompt: list[PromptMessage] = []
    started: dict[str, dict[str, Any]] = {}
    by_call: dict[str, ToolCallStep] = {}
    for e in events:
        p = e.payload
        if e.type == "model_call":
            prompt = prompt[: int(p.get("prompt_offset") or 0)] + [
                _message(m) for m in p.get("prompt") or [] if isinstance(m, dict)
            ]
            steps.append(_model_step(p, list(prompt), tz))
        elif e.type == "tool_call_started":
            started[str(p.get("call_id"))] = p
            step = _tool_step(p, None)
            by_call[step.call_id] = step
            steps.append(step)
        elif e.type in ("tool_call_finished", "tool_call_denied"):
            step = _tool_step(started.get(str(p.get("call_id")), {}), p)
            if step.call_id in by_call:
                steps[steps.index(by_call[step.call_id])] = step
            else:
                steps.append(step)
            by_call[step.call_id] = step
    detailed = any(isinstance(s, ModelCallStep) for s in steps)
    if not any(isinstance(s, ToolCallStep) for s in steps):
        # A run whose log holds no tool events (one from before the log): its rows.
        steps += [_tool_row(c) for c in calls]
    return RunTrace(
        id=run.id,
        conversation_id=run.conversation_id,
        status=run.status,
        provider=run.provider,
        model=run.model,
        timezone=tz.key,
        started_at=run.started_at.astimezone(tz),
        finished_at=run.finished_at.astimezone(tz) if run.finished_at else None,
        latency_ms=_latency_ms(run.started_at, run.finished_at),
        input_tokens=int(run.input_tokens or 0),
        output_tokens=int(run.output_tokens or 0),
        cache_read_tokens=int(run.cache_read_tokens or 0),
        cache_write_tokens=int(run.cache_write_tokens or 0),
        total_tokens=int(run.total_tokens or 0),
        cost_usd=run.total_cost,
        unpriced=bool(run.unpriced),
        usage_estimated=bool(run.usage_estimated),
        error=redact(run.error) if run.error else None,
        question=redact(question),
        answer=redact(answer),
        steps=steps,
        detailed=detailed,
    )


def _latency_ms(start: datetime, end: datetime | None) -> int | None:
    return None if end is None else max(0, round((end - start).total_seconds() * 1000))


def _message(m: dict[str, Any]) -> PromptMessage:
    calls = m.get("tool_calls") or []
    return PromptMessage(
        role=str(m.get("role") or ""),
        content=redact(str(m.get("content") or "")),
        tool_call_id=str(m["tool_call_id"]) if m.get("tool_call_id") else None,
        tool_calls=[
            f"{c.get('name')}({_args_text(c.get('arguments'))})"
            for c in calls
            if isinstance(c, dict)
        ],
    )


def _args_text(value: object) -> str:
    return json.dumps(redact_value(value), ensure_ascii=False, sort_keys=True)


def _model_step(p: dict[str, Any], prompt: list[PromptMessage], tz: ZoneInfo) -> ModelCallStep:
    started = p.get("started_at")
    return ModelCallStep(
        step=int(p.get("step") or 0),
        started_at=datetime.fromisoformat(str(started)).astimezone(tz) if started else None,
        duration_ms=int(p.get("duration_ms") or 0),
        first_token_ms=None if p.get("first_token_ms") is None else int(p["first_token_ms"]),
        prompt=prompt,
        response=redact(str(p.get("response") or "")),
        tool_calls=[
            f"{c.get('name')}({_args_text(c.get('arguments'))})"
            for c in p.get("tool_calls") or []
            if isinstance(c, dict)
        ],
        input_tokens=int(p.get("input_tokens") or 0),
        output_tokens=int(p.get("output_tokens") or 0),
        cache_read_tokens=int(p.get("cache_read_tokens") or 0),
        cache_write_tokens=int(p.get("cache_write_tokens") or 0),
        status=str(p.get("status") or "ok"),
        error=redact(str(p.get("error") or "")) or None,
        finish_reason=str(p.get("finish_reason") or ""),
    )


def _tool_step(start: dict[str, Any], end: dict[str, Any] | None) -> ToolCallStep:
    end = end or {}
    status = "running"
    if end.get("type") == "tool_call_denied":
        status = "denied"
    elif end:
        status = str(end.get("status") or "ok")
    result = end.get("result")
    return ToolCallStep(
        call_id=str(end.get("call_id") or start.get("call_id") or ""),
        tool_id=str(end.get("tool_id") or start.get("tool_id") or ""),
        arguments=_json_object(start.get("arguments")),
        result=_json_object(result) if isinstance(result, dict) else None,
        status=status,
        duration_ms=None if end.get("latency_ms") is None else int(end["latency_ms"]),
        error=redact(str(end.get("reason"))) if end.get("reason") else _error_of(result),
    )


def _tool_row(c: ToolCall) -> ToolCallStep:
    return ToolCallStep(
        call_id=str(c.id),
        tool_id=c.tool_id,
        arguments=_json_object(c.arguments),
        result=_json_object(c.result) if isinstance(c.result, dict) else None,
        status=c.status,
        duration_ms=c.latency_ms,
        error=_error_of(c.result),
    )


def _json_object(value: object) -> JSONObject:
    cleaned = redact_value(value)
    return dict(cleaned) if isinstance(cleaned, dict) else {}


def _error_of(result: object) -> str | None:
    if isinstance(result, dict) and result.get("error"):
        return redact(str(result["error"]))
    return None
