"""Database spans: one per statement, the operation only — never the SQL text or parameters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from jarvis import tracing
from jarvis.config import Settings
from jarvis.db.engine import create_app_engine

SECRET = "sk-proj-DBSPANSECRET1234567890abcdef"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure_tracing(exporter=exporter, synchronous=True)
    yield exporter
    tracing.reset_tracing()


def test_statements_become_spans_without_text_or_parameters(settings: Settings, spans) -> None:
    engine = create_app_engine(settings)
    tracing.instrument_engine(engine)
    tracing.instrument_engine(engine)  # idempotent: still one span per statement
    try:
        with engine.connect() as conn:
            spans.clear()
            value = conn.execute(text("SELECT :v AS secret_value"), {"v": SECRET}).scalar()
            with pytest.raises(ProgrammingError):
                conn.execute(
                    text("SELECT * FROM no_such_table_for_spans WHERE x = :v"), {"v": SECRET}
                )
    finally:
        engine.dispose()

    assert value == SECRET
    finished = [s for s in spans.get_finished_spans() if s.name.startswith("db.")]
    assert [s.name for s in finished] == ["db.SELECT", "db.SELECT"]
    ok, failed = finished
    assert ok.attributes["db.system"] == "postgresql"
    assert ok.attributes["db.operation"] == "SELECT"
    assert ok.attributes["db.rows"] == 1
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "UndefinedTable"
    for span in finished:
        exported = span.to_json()
        assert SECRET not in exported
        assert "secret_value" not in exported and "no_such_table" not in exported


def test_sql_operation_names() -> None:
    assert tracing.sql_operation("  insert into x values (1)") == "INSERT"
    assert tracing.sql_operation("/* hint */ WITH RECURSIVE r AS (...) SELECT 1") == "WITH"
    assert tracing.sql_operation("") == "SQL"
