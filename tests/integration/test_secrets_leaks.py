"""A secret value never leaks: not in logs, spans, exceptions, audit details, listings or the
database (a full create / use / replace / delete cycle, with errors on the way)."""

from __future__ import annotations

import io
import logging
import traceback
import uuid
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine, text

from jarvis.bootstrap import Services
from jarvis.errors import JarvisError
from jarvis.identity import Principal
from jarvis.logs import JsonFormatter, RedactionFilter
from jarvis.tracing import configure_tracing, reset_tracing


@pytest.fixture
def spans() -> Iterator[tuple[InMemorySpanExporter, InMemorySpanExporter]]:
    """(exported spans after Jarvis' redaction, raw spans as the code created them)."""
    exported = InMemorySpanExporter()
    provider = configure_tracing(exporter=exported, synchronous=True)
    assert isinstance(provider, TracerProvider)
    raw = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(raw))
    yield exported, raw
    reset_tracing()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The production log pipeline (redaction filter + JSON formatter) into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield buffer
    root.removeHandler(handler)


def _span_text(exporter: InMemorySpanExporter) -> str:
    parts = []
    for s in exporter.get_finished_spans():
        parts.append(s.name)
        parts.append(repr(dict(s.attributes or {})))
        parts.append(repr(s.status.description))
        for event in s.events:
            parts.append(event.name + repr(dict(event.attributes or {})))
    return "\n".join(parts)


def _database_text(owner_engine: Engine) -> str:
    """Every row of every table in the schema, as text (bytea renders as hex)."""
    with owner_engine.connect() as conn:
        tables = conn.scalars(
            text("select tablename from pg_tables where schemaname = 'public'")
        ).all()
        return "\n".join(
            row
            for table in tables
            for row in conn.scalars(text(f'select t::text from "{table}" t'))
        )


def _assert_absent(haystack: str, *values: str) -> None:
    for value in values:
        assert value not in haystack
        assert value.encode().hex() not in haystack  # bytea rendered as hex
        assert value[:-4] not in haystack  # nothing but the last four characters, ever


def test_full_cycle_leaks_no_value_anywhere(
    committed_services: Services,
    committed_user: Callable[[str], Principal],
    owner_engine: Engine,
    spans: tuple[InMemorySpanExporter, InMemorySpanExporter],
    json_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = committed_services
    user = committed_user("leak")
    # Values the redaction filter would NOT recognise: a leak cannot hide behind redaction.
    first = "Zq" + uuid.uuid4().hex + "Kw"
    second = "Yp" + uuid.uuid4().hex + "Jm"
    openai = "sk-" + uuid.uuid4().hex + uuid.uuid4().hex[:6]
    errors: list[str] = []
    seen: list[str] = []

    def attempt(call: Callable[[], object]) -> None:
        try:
            seen.append(repr(call()))
        except JarvisError as exc:
            errors.append(str(exc) + repr(exc) + "".join(traceback.format_exception(exc)))

    with caplog.at_level(logging.DEBUG):
        created = s.secrets.create(user, "custom", "canary", first)
        other = s.secrets.create(user, "openai", "default", openai)
        seen.append(repr(created) + repr(other) + repr(s.secrets.list(user)))
        database_while_stored = _database_text(owner_engine)
        attempt(lambda: s.secrets.create(user, "custom", "canary", first))  # duplicate
        attempt(lambda: s.secrets.create(user, "openai", "x", first))  # malformed for openai
        attempt(lambda: s.secrets.update(user, other.id, first))  # malformed for openai
        revealed = s.secrets.reveal(user, "custom", "canary")
        assert revealed.value == first
        seen.append(repr(revealed) + str(revealed))
        attempt(lambda: s.secrets.reveal(user, "custom", "nope"))
        s.secrets.update(user, created.id, second)
        assert s.secrets.reveal(user, "custom").value == second
        assert s.secrets.reveal(user, "openai").value == openai
        seen.append(repr(s.secrets.list(user)) + repr(s.secrets.get(user, created.id)))
        database_after_update = _database_text(owner_engine)
        s.secrets.delete(user, created.id)
        s.secrets.delete(user, other.id)

    exported, raw = spans
    span_names = {sp.name for sp in raw.get_finished_spans()}
    assert {
        "vault.create",
        "vault.reveal",
        "vault.update",
        "vault.delete",
        "vault.list",
    } <= span_names
    assert "secret created" in caplog.text and json_log.getvalue().count("secret created") == 2
    assert len(errors) == 4

    with owner_engine.connect() as conn:
        audit = "\n".join(
            conn.scalars(
                text(
                    "select action || ' ' || coalesce(target, '') || ' ' || details::text "
                    "from audit_events where user_id = :u"
                ),
                {"u": user.user_id},
            )
        )
    assert audit.count("secret.used") == 3 and "secret.deleted" in audit

    raw_records = "\n".join(
        f"{r.getMessage()} {vars(r)!r} {r.exc_text or ''}" for r in caplog.records
    )
    places = {
        "json log": json_log.getvalue(),
        "log records": raw_records,
        "exported spans": _span_text(exported),
        "raw spans": _span_text(raw),
        "exceptions": "\n".join(errors),
        "listings and reprs": "\n".join(seen),
        "audit": audit,
        "database (stored)": database_while_stored,
        "database (updated)": database_after_update,
        "database (after delete)": _database_text(owner_engine),
    }
    for place, haystack in places.items():
        try:
            _assert_absent(haystack, first, second, openai)
        except AssertionError:
            pytest.fail(f"a secret value leaked into: {place}")
    # The stored rows were really there (the scan looked at them).
    assert "canary" in database_while_stored and created.last4 in database_while_stored
