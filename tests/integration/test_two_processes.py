"""Two app processes on one PostgreSQL: a run started through one is watched through the other
and stopped from there; limits hold across both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from jarvis.config import Settings
from jarvis.db.tables import Conversation, User
from tests.conftest import app_environment

ROOT = Path(__file__).resolve().parents[2]


class AppProcess:
    """``python -m tests.app_process`` on the test database, spoken to line by line."""

    def __init__(self, settings: Settings, **env: str) -> None:
        full = dict(os.environ)
        full.update(app_environment(settings, JARVIS_MAX_CONCURRENT_RUNS="1", **env))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.app_process"],
            cwd=ROOT,
            env=full,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.read()["ready"]

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the app process exited"
        value: dict[str, Any] = json.loads(line)
        return value

    def send(self, *words: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(" ".join(str(w) for w in words) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send("quit")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def two_apps(settings: Settings) -> Iterator[tuple[AppProcess, AppProcess]]:
    a, b = AppProcess(settings), AppProcess(settings)
    yield a, b
    a.close()
    b.close()


def test_a_run_started_in_one_process_is_followed_and_stopped_from_another(
    two_apps: tuple[AppProcess, AppProcess], owner_engine: Engine
) -> None:
    a, b = two_apps
    uid, conv, other_conv = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with Session(owner_engine) as s:
        s.add(User(id=uid, email=f"two-{uid.hex[:8]}@example.com", password_hash="x"))
        s.flush()
        s.add_all(
            [
                Conversation(id=conv, user_id=uid, title="t", provider="offline", model="m"),
                Conversation(id=other_conv, user_id=uid, title="u", provider="offline", model="m"),
            ]
        )
        s.commit()

    a.send("start", uid, conv, "talk for a long time")
    run_id = a.read()["run_id"]
    # The concurrency limit (1 answer at a time) holds across processes.
    b.send("start", uid, other_conv, "me too")
    refused = b.read()
    assert refused["error"] == "LimitExceededError" and "in progress" in refused["message"]

    b.send("follow", uid, run_id, 0)  # B watches A's run ...
    seen: list[dict[str, Any]] = []
    asked_at = 0.0
    while True:
        event = b.read()
        if "cancelled" in event:
            assert event["cancelled"] is True
            continue
        seen.append(event)
        if "end" in event:
            break
        if not asked_at and sum(e.get("type") == "text_delta" for e in seen) == 3:
            asked_at = time.time()
            b.send("cancel", uid, run_id)  # ... and stops it
    types = [e["type"] for e in seen if "type" in e]
    assert types[0] == "run_started" and types[-1] == "run_cancelled", types
    assert [e["seq"] for e in seen if "seq" in e] == list(range(1, len(types) + 1))
    stopped_after = seen[-2]["at"] - asked_at
    assert stopped_after < 1.0, stopped_after  # A stopped within a second
    with owner_engine.connect() as c:
        row = c.execute(
            text(
                "select r.status, w.pid from agent_runs r join run_workers w on w.id = r.worker_id"
                " where r.id = :r"
            ),
            {"r": run_id},
        ).one()
    assert row.status == "cancelled" and row.pid == a.proc.pid  # A ran it, B stopped it
    # With the slot free again, B may start an answer.
    b.send("start", uid, other_conv, "my turn")
    assert "run_id" in b.read()
