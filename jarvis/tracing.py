"""OpenTelemetry set-up and the span helpers every Jarvis component uses.

- :func:`configure_tracing` picks the exporter from ``settings.otel_exporter``
  (``none`` / ``console`` / ``otlp`` — OTLP over HTTP, endpoint from the standard
  ``OTEL_EXPORTER_OTLP_*`` variables) and installs a :class:`TracerProvider` whose processor
  is wrapped in :class:`RedactingSpanProcessor`.
- :func:`get_tracer` returns the Jarvis tracer (a no-op tracer until tracing is configured).
- :func:`start_span` / :func:`span` create spans whose attributes go through
  :func:`safe_attributes`: ``None`` dropped, strings redacted, and keys that could carry message
  text or secrets (``content``, ``prompt``, ``text``, ``arguments``, ``api_key`` ...) refused.

:func:`instrument_engine` adds a ``db.<OPERATION>`` span per SQL statement (operation only).

The processor applies the same rules again when a span ends (attributes, event attributes and
the status description), so an attribute set directly on a span cannot leak either.

Attribute names used by Jarvis: ``llm.provider``, ``llm.model``, ``llm.status``,
``llm.stop_reason``, ``llm.attempts``, ``llm.tool_calls``, ``llm.input_tokens``,
``llm.output_tokens``, ``llm.cache_read_tokens``, ``llm.cache_write_tokens``, ``error.type``
(error class name); the orchestrator adds ``run.id``, ``tool.id``, ``run.cost_usd``...
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, Status, StatusCode, Tracer
from sqlalchemy import Engine, event

from jarvis.redaction import redact

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from jarvis.config import Settings

TRACER_NAME = "jarvis"
SERVICE_NAME = "jarvis"

# A key is refused when one of its dot-separated segments is one of these ...
_FORBIDDEN_SEGMENTS = frozenset(
    {
        "content",
        "contents",
        "prompt",
        "prompts",
        "text",
        "message",
        "messages",
        "completion",
        "arguments",
        "args",
        "result",
        "results",
        "input",
        "output",
        "query",
        "body",
        "key",
        "secret",
        "password",
        "authorization",
    }
)
# ... or when it contains one of these anywhere.
_FORBIDDEN_PARTS = ("api_key", "apikey", "secret", "password", "authorization", "credential")
# Keys OpenTelemetry itself puts on exception events; their values are redacted, not dropped.
_ALLOWED_KEYS = frozenset(
    {"exception.type", "exception.message", "exception.stacktrace", "exception.escaped"}
)

_MAX_STRING = 500

_lock = threading.Lock()
_provider: TracerProvider | None = None
_configured_kind: str | None = None  # the settings' exporter kind _provider was built for
_global_installed = False


def is_allowed_key(key: str) -> bool:
    """Whether an attribute ``key`` may be recorded (it cannot name message text or secrets)."""
    if key in _ALLOWED_KEYS:
        return True
    lowered = key.lower()
    if any(part in lowered for part in _FORBIDDEN_PARTS):
        return False
    return not any(segment in _FORBIDDEN_SEGMENTS for segment in lowered.split("."))


def _safe_value(value: Any) -> Any:
    if isinstance(value, str):
        text = redact(value)
        return text if len(text) <= _MAX_STRING else text[: _MAX_STRING - 1] + "…"
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_safe_value(v) for v in value if isinstance(v, str | bool | int | float)]
    return redact(str(value))


def safe_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """Attributes fit for a span: ``None`` values and forbidden keys dropped, strings redacted."""
    if not attributes:
        return {}
    return {
        key: _safe_value(value)
        for key, value in attributes.items()
        if value is not None and is_allowed_key(key)
    }


def set_attributes(span: Span, attributes: Mapping[str, Any]) -> None:
    """Set attributes on ``span`` through :func:`safe_attributes`."""
    for key, value in safe_attributes(attributes).items():
        span.set_attribute(key, value)


def mark_error(span: Span, exc: BaseException) -> None:
    """Record a failure: the error class only (its message may quote user text)."""
    span.set_attribute("error.type", type(exc).__name__)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


# -- processor ----------------------------------------------------------------------------


class RedactingSpanProcessor(SpanProcessor):
    """Wraps the exporting processor; hands it a copy of each ended span with forbidden
    attributes removed and every string redacted (attributes, events, status)."""

    def __init__(self, inner: SpanProcessor) -> None:
        self._inner = inner

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        self._inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self._inner.on_end(redacted_span(span))

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def redacted_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` that obeys the attribute rules."""
    events = [
        Event(event.name, safe_attributes(event.attributes), event.timestamp)
        for event in span.events
    ]
    status = span.status
    if status.description:
        status = Status(status.status_code, redact(status.description))
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=safe_attributes(span.attributes),
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


# -- set-up ------------------------------------------------------------------------------


def make_exporter(kind: str) -> SpanExporter | None:
    """The exporter for ``settings.otel_exporter``; ``None`` for ``none``."""
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from jarvis.errors import ConfigError

    raise ConfigError(f"JARVIS_OTEL_EXPORTER: unknown exporter {kind!r} (none, console, otlp).")


def configure_tracing(
    settings: Settings | None = None,
    *,
    exporter: SpanExporter | None = None,
    synchronous: bool = False,
    install_global: bool | None = None,
) -> TracerProvider | None:
    """Install the Jarvis tracer provider; returns it (``None`` when tracing is off).

    ``exporter`` overrides the settings (tests pass an ``InMemorySpanExporter`` and
    ``synchronous=True``). The first configuration from settings also becomes OpenTelemetry's
    global provider (``install_global``; default: only when built from settings), so libraries
    that trace through the global API join the same pipeline.
    Calling it again with the same settings is a no-op (``build_services`` may run more than
    once); with an explicit ``exporter`` it replaces Jarvis' own provider (tests), never the
    global one.
    """
    global _provider, _global_installed, _configured_kind
    kind: str | None = None
    if exporter is None:
        kind = settings.otel_exporter if settings is not None else "none"
        if kind == "none":
            return None
        with _lock:
            if _provider is not None and _configured_kind == kind:
                return _provider
        exporter = make_exporter(kind)
    if exporter is None:
        return None
    processor: SpanProcessor = (
        SimpleSpanProcessor(exporter) if synchronous else BatchSpanProcessor(exporter)
    )
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(RedactingSpanProcessor(processor))
    with _lock:
        _provider = provider
        _configured_kind = kind
        if install_global is None:
            install_global = kind is not None
        if install_global and not _global_installed:
            trace.set_tracer_provider(provider)
            _global_installed = True
    return provider


def reset_tracing() -> None:
    """Forget Jarvis' own provider (tests); the global one, if installed, stays."""
    global _provider, _configured_kind
    with _lock:
        _provider = None
        _configured_kind = None


def get_tracer() -> Tracer:
    """The tracer of the configured provider, else of the global (possibly no-op) one."""
    provider = _provider
    if provider is not None:
        return provider.get_tracer(TRACER_NAME)
    return trace.get_tracer(TRACER_NAME)


def start_span(name: str, attributes: Mapping[str, Any] | None = None) -> Span:
    """Start a span that is NOT made current (for generators that yield across it);
    the caller must ``end()`` it. Its parent is the span current right now."""
    return get_tracer().start_span(name, attributes=safe_attributes(attributes))


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
    """``with span("tool.call", {"tool.id": ...}) as s:`` — a current span; an exception
    marks it failed (class name only) and propagates."""
    tracer = get_tracer()
    with tracer.start_as_current_span(
        name,
        attributes=safe_attributes(attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            if not isinstance(exc, GeneratorExit):
                mark_error(current, exc)
            raise


# -- database ----------------------------------------------------------------------------

_SQL_OPERATION = re.compile(r"^\s*(?:/\*.*?\*/\s*)?(\w+)", re.S)
_INSTRUMENTED = "_jarvis_tracing_instrumented"


def sql_operation(statement: str) -> str:
    """``SELECT`` / ``INSERT`` / ... — the only part of a statement a span records."""
    match = _SQL_OPERATION.match(statement or "")
    return match.group(1).upper() if match else "SQL"


def instrument_engine(engine: Engine) -> None:
    """Add a ``db.<OPERATION>`` span around every statement of ``engine`` (idempotent).

    Only the operation keyword, the database system and the row count are recorded — never
    the statement text or its parameters (they may hold user text or secrets).
    """
    if getattr(engine, _INSTRUMENTED, False):
        return
    setattr(engine, _INSTRUMENTED, True)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(
        conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        operation = sql_operation(statement)
        span = get_tracer().start_span(
            f"db.{operation}",
            kind=trace.SpanKind.CLIENT,
            attributes={"db.system": "postgresql", "db.operation": operation},
        )
        conn.info.setdefault("_jarvis_spans", []).append(span)

    @event.listens_for(engine, "after_cursor_execute")
    def _after(
        conn: Any, cursor: Any, _statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        spans = conn.info.get("_jarvis_spans")
        if spans:
            span = spans.pop()
            rowcount = getattr(cursor, "rowcount", -1)
            if isinstance(rowcount, int) and rowcount >= 0:
                span.set_attribute("db.rows", rowcount)
            span.end()

    @event.listens_for(engine, "handle_error")
    def _error(context: Any) -> None:
        conn = context.connection
        spans = conn.info.get("_jarvis_spans") if conn is not None else None
        if spans:
            span = spans.pop()
            mark_error(span, context.original_exception)
            span.end()
