"""A second Jarvis app process for tests: the real services (run workers, supervisor, LISTEN),
driven line by line over stdin/stdout so a test can start, follow and stop runs across
processes on one PostgreSQL.

    python -m tests.app_process        # settings from the environment (DATABASE_URL, keys ...)

Commands (one per line; answers are JSON lines; a refusal is {"error": <class>, "message"}):
    start USER_ID CONVERSATION_ID TEXT...   -> {"run_id": ...}
    follow USER_ID RUN_ID AFTER             -> (in the background, while other commands run)
                                               one {"seq", "type", "at"} per event, then
                                               {"end": RUN_ID}
    cancel USER_ID RUN_ID                   -> {"cancelled": bool}
    quit

Its model streams ``w0 w1 ...`` (``JARVIS_TEST_WORDS`` words, one every
``JARVIS_TEST_PAUSE`` seconds), so answers last long enough to be watched and stopped.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator

from jarvis.bootstrap import Services, build_services
from jarvis.config import get_settings
from jarvis.errors import JarvisError
from jarvis.identity import Principal
from jarvis.llm.base import (
    ChatMessage,
    FakeProvider,
    Finished,
    StreamEvent,
    TextDelta,
    ToolDefinition,
    Usage,
    UsageReport,
)
from tests.integration.chat_helpers import StaticProviders


def _slow(_messages: list[ChatMessage], _tools: list[ToolDefinition]) -> Iterator[StreamEvent]:
    n = int(os.environ.get("JARVIS_TEST_WORDS", "200"))
    pause = float(os.environ.get("JARVIS_TEST_PAUSE", "0.05"))
    for i in range(n):
        yield TextDelta(f"w{i} ")
        time.sleep(pause)
    yield UsageReport(Usage(10, n))
    yield Finished("stop")


_out = threading.Lock()


def _say(value: object) -> None:
    with _out:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()


def _follow(services: Services, who: Principal, run_id: uuid.UUID, after: int) -> None:
    for followed in services.runs.follow(who, run_id, after):
        _say({"seq": followed.seq, "type": followed.event.type, "at": time.time()})
    _say({"end": str(run_id)})


def main() -> None:
    services = build_services(
        get_settings(), providers=StaticProviders(FakeProvider(_slow)), run_beat_seconds=0.5
    )
    _say({"ready": True, "worker_id": str(services.runs.worker_id)})
    try:
        for line in sys.stdin:
            parts = line.strip().split(" ", 3)
            if not parts or parts[0] == "quit":
                break
            who = Principal(user_id=uuid.UUID(parts[1]), email="process@example.com")
            try:
                if parts[0] == "start":
                    started = services.runs.start(who, uuid.UUID(parts[2]), parts[3])
                    _say({"run_id": str(started.run_id)})
                elif parts[0] == "follow":
                    threading.Thread(
                        target=_follow,
                        args=(services, who, uuid.UUID(parts[2]), int(parts[3])),
                        daemon=True,
                    ).start()
                elif parts[0] == "cancel":
                    _say({"cancelled": services.runs.cancel(who, uuid.UUID(parts[2]))})
            except JarvisError as exc:
                _say({"error": type(exc).__name__, "message": str(exc)})
    finally:
        services.shutdown()


if __name__ == "__main__":
    main()
