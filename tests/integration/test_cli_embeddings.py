"""`jarvis embeddings reembed` moves a user's memories to another model, with progress."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from jarvis.bootstrap import build_services
from jarvis.cli import main
from jarvis.config import Settings, get_settings
from jarvis.llm.embedders import LEXICAL_MODEL, MODEL_DIMS, OPENAI_MODEL
from jarvis.security.passwords import PasswordHasher
from tests import factories
from tests.conftest import app_environment


def test_reembed_moves_rows_and_reports_progress(
    fresh_database: Callable[[], Settings],
    fast_hasher: PasswordHasher,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = fresh_database()
    services = build_services(s, hasher=fast_hasher, background=False)
    try:
        who = factories.user(services.uow, "cli-mem", email="cli-mem@example.com")
        with services.uow(who) as w:
            for i in range(1, 6):
                w.memories.add(
                    user_id=who.user_id,
                    content=f"memory {i}",
                    embedding=[0.5] * MODEL_DIMS[OPENAI_MODEL],
                    embedding_model=OPENAI_MODEL,
                )
            w.commit()
        for var, value in app_environment(s, LOG_LEVEL="WARNING").items():
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
                "--inline",
            ]
        )
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "4 of 5 (80 %)" in out.out and "Re-embedded 5 of 5 memories" in out.out
        with services.uow(who) as w:
            assert w.memories.count_by_model(who.user_id) == {LEXICAL_MODEL: 5}
        # OpenAI without the user's key: one clear line, non-zero exit
        assert (
            main(
                [
                    "embeddings",
                    "reembed",
                    "--user",
                    "cli-mem@example.com",
                    "--model",
                    "openai",
                    "--inline",
                ]
            )
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
        services.engine.dispose()
