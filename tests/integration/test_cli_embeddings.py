"""`jarvis embeddings reembed` moves a user's memories to another model, with progress."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, text

from jarvis.cli import main
from jarvis.config import Settings, get_settings
from jarvis.llm.embedders import LEXICAL_MODEL, OPENAI_MODEL
from tests.conftest import TEST_APP_PASSWORD, TEST_JWT_SECRET, TEST_MASTER_KEY


def test_reembed_moves_rows_and_reports_progress(
    fresh_database: Callable[[], Settings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = fresh_database()
    owner = create_engine(s.owner_url())
    uid = uuid.uuid4()
    try:
        with owner.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, email, password_hash) VALUES (:id, 'cli-mem@example.com', 'x')"
                ),
                {"id": uid},
            )
            conn.execute(
                text(
                    "INSERT INTO memories (user_id, content, embedding, embedding_model) "
                    "SELECT :u, 'memory ' || g, array_fill(0.5, ARRAY[384])::vector, :m FROM generate_series(1, 5) g"
                ),
                {"u": uid, "m": OPENAI_MODEL},
            )
        for var, value in dict(
            DATABASE_URL=s.owner_url(),
            JARVIS_DATA_DIR=str(s.data_dir),
            JARVIS_MASTER_KEY=TEST_MASTER_KEY,
            JARVIS_JWT_SECRET=TEST_JWT_SECRET,
            JARVIS_DB_APP_PASSWORD=TEST_APP_PASSWORD,
            JARVIS_ENV="test",
            LOG_LEVEL="WARNING",
        ).items():
            monkeypatch.setenv(var, value)
        get_settings.cache_clear()
        code = main(
            [
                "embeddings",
                "reembed",
                "--user",
                "CLI-mem@example.com",
                "--model",
                "lexical",
                "--batch-size",
                "2",
            ]
        )
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "4/5 memories" in out.out and "Re-embedded 5 of 5 memories" in out.out
        with owner.connect() as conn:
            models = set(
                conn.scalars(
                    text("SELECT DISTINCT embedding_model FROM memories WHERE user_id = :u"),
                    {"u": uid},
                )
            )
        assert models == {LEXICAL_MODEL}
        # OpenAI without the user's key: one clear line, non-zero exit
        assert (
            main(["embeddings", "reembed", "--user", "cli-mem@example.com", "--model", "openai"])
            == 1
        )
        assert "OpenAI key" in capsys.readouterr().err
        assert (
            main(["embeddings", "reembed", "--user", "nobody@example.com", "--model", "lexical"])
            == 1
        )
        assert "No account" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
        owner.dispose()
