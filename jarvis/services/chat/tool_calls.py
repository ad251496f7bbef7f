"""One tool call of an agent run: the permission re-checked at call time, the arguments checked
against the tool's JSON schema, the handler run, its result bounded, the row recorded.

Tool results are data, never instructions: a tool result that asks for a denied tool cannot get
it executed, because every call is re-checked against the user's permissions here, whatever the
model was offered at the start of the run.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Generator
from typing import Any

import jsonschema
from opentelemetry.trace import Status, StatusCode

from jarvis import tracing
from jarvis.clock import Clock
from jarvis.db.repositories.chat import json_safe
from jarvis.db.tables import ToolCall
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import JarvisError, ValidationError
from jarvis.identity import Principal
from jarvis.llm import base as llm
from jarvis.services.chat import events as ev
from jarvis.services.chat.ports import PermissionsPort
from jarvis.services.chat.state import RunState
from jarvis.tools.builtin import ToolContext
from jarvis.tools.ports import ToolServices
from jarvis.tools.registry import ToolRegistry, ToolSpec
from jarvis.validation import check_json

log = logging.getLogger(__name__)

MAX_RESULT_BYTES = 4096
#: The largest arguments a tool call may carry (the longest tool input is a 4,000-char memory).
MAX_ARGUMENT_BYTES = 32 * 1024

#: What one call ends with: its closing event, and the tool message content for the model.
ToolCallOutcome = tuple[ev.ToolCallFinished | ev.ToolCallDenied, str]


def bound_result(result: object, limit: int = MAX_RESULT_BYTES) -> dict[str, Any]:
    """A tool result as a JSON object of at most about ``limit`` bytes (truncated, flagged)."""
    value = json_safe(result)
    if not isinstance(value, dict):
        value = {"value": value}
    encoded = json.dumps(value, ensure_ascii=False)
    if len(encoded.encode()) <= limit:
        return value
    preview = encoded.encode()[: limit - 200].decode("utf-8", errors="ignore")
    return {"truncated": True, "original_bytes": len(encoded.encode()), "preview": preview}


def _argument_problem(call: llm.ToolCallRequest) -> str | None:
    """Why the model's arguments cannot even be looked at (deeper or larger than any tool
    takes, text that cannot be stored), or None. Checked before the call is announced, so
    events and rows only ever carry storable arguments."""
    if not call.arguments_valid:
        return None  # reported by the schema check, with the raw text kept aside
    try:
        check_json(call.arguments, field="arguments", max_bytes=MAX_ARGUMENT_BYTES)
    except ValidationError as exc:
        return f"Invalid arguments: {exc}"
    return None


class ToolCallExecutor:
    """Checks, runs and records the tool calls of runs (shared; the run's state is passed in)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        tools: ToolRegistry,
        permissions: PermissionsPort,
        tool_services: ToolServices,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._tools = tools
        self._permissions = permissions
        self._tool_services = tool_services

    def call(
        self, state: RunState, call: llm.ToolCallRequest, offered: dict[str, ToolSpec]
    ) -> Generator[ev.Event, None, ToolCallOutcome]:
        """Check, run and record one call: yields ``tool_call_started`` when it runs; returns
        the closing event and the tool message content for the model."""
        # The model names a tool by its wire name (``server__tool`` for ``server.tool``).
        spec = self._tools.get(call.name)
        tool_id = spec.id if spec is not None else call.name
        with tracing.get_tracer().start_as_current_span(
            "agent.tool_call",
            context=state.trace_context,
            attributes=tracing.safe_attributes({"run.id": str(state.run_id), "tool.id": tool_id}),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            started = time.perf_counter()
            denied_reason = self._denial(state.principal, spec)
            if denied_reason is not None:
                status, result = (
                    "denied",
                    {"error": denied_reason + " Do not call it again; answer without it."},
                )
            elif spec is None:
                status, result = "error", {"error": f"There is no tool called {call.name[:100]!r}."}
            elif (bad_arguments := _argument_problem(call)) is not None:
                status, result = "error", {"error": bad_arguments}
            elif spec.id not in offered:
                status, result = (
                    "error",
                    {
                        "error": f"The tool {spec.id} needs a "
                        f"{spec.required_secret or 'secret'} key the user has not added."
                    },
                )
            else:
                yield ev.ToolCallStarted(state.run_id, call.id, tool_id, dict(call.arguments))
                started = time.perf_counter()
                status, result = self._execute(state, spec, call)
            latency_ms = int((time.perf_counter() - started) * 1000)
            limit = spec.result_limit if spec is not None else None
            result = bound_result(result, limit or MAX_RESULT_BYTES)
            tracing.set_attributes(span, {"tool.status": status, "tool.latency_ms": latency_ms})
            if status != "ok":
                span.set_status(Status(StatusCode.ERROR, status))
            self._record(state, call, tool_id, status, result, latency_ms)
        content = json.dumps({"status": status, **result}, ensure_ascii=False)
        if denied_reason is not None:
            return ev.ToolCallDenied(state.run_id, call.id, tool_id, denied_reason), content
        return (
            ev.ToolCallFinished(state.run_id, call.id, tool_id, status, result, latency_ms),
            content,
        )

    def _denial(self, principal: Principal, spec: ToolSpec | None) -> str | None:
        """Why this call is denied (re-checked now, whatever the model was offered), or None."""
        if spec is None:
            return None
        if self._permissions.is_allowed(principal, spec.id):
            return None
        return f"The user has not allowed the tool {spec.id}."

    def _execute(
        self, state: RunState, spec: ToolSpec, call: llm.ToolCallRequest
    ) -> tuple[str, dict[str, Any]]:
        if not call.arguments_valid:
            return "error", {"error": "The arguments are not a JSON object."}
        try:
            jsonschema.validate(call.arguments, spec.parameters)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "arguments"
            return "error", {"error": f"Invalid arguments ({where}): {exc.message}"[:500]}
        handler = self._tools.handler(spec.id)
        if handler is None:
            return "error", {"error": f"The tool {spec.id} is not available."}
        ctx = ToolContext(
            principal=state.principal, services=self._tool_services, run_id=state.run_id
        )
        try:
            return "ok", handler(ctx, dict(call.arguments))
        except JarvisError as exc:
            return "error", {"error": str(exc)}
        except Exception:
            log.exception("tool handler failed", extra={"tool_id": spec.id})
            return "error", {"error": f"The tool {spec.id} failed unexpectedly."}

    def _record(
        self,
        state: RunState,
        call: llm.ToolCallRequest,
        tool_id: str,
        status: str,
        result: dict[str, Any],
        latency_ms: int,
    ) -> None:
        """The call's row, committed at once (a crash keeps it)."""
        arguments = (
            call.arguments if call.arguments_valid else {"raw": (call.arguments_raw or "")[:1000]}
        )
        with self._uow(state.principal) as uow:
            uow.tool_calls.add(
                ToolCall(
                    id=uuid.uuid4(),
                    run_id=state.run_id,
                    user_id=state.principal.user_id,
                    tool_id=tool_id[:100],
                    arguments=bound_result(arguments),
                    result=result,
                    status=status,
                    latency_ms=latency_ms,
                    created_at=state.next_stamp(self._clock.now()),
                )
            )
            uow.commit()
