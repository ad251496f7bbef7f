"""Logs are JSON lines with context, and secrets never reach them."""

from __future__ import annotations

import io
import json
import logging

import pytest

from jarvis.logs import bind, configure_logging
from jarvis.redaction import redact

OPENAI_KEY = "sk-proj-AbCdEf1234567890abcdefGHIJ"
ANTHROPIC_KEY = "sk-ant-api03-abcdefghijklmnop1234567890"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@pytest.fixture
def log_stream() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    yield stream
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_jarvis", False):
            root.removeHandler(h)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        (f"calling openai with {OPENAI_KEY}", OPENAI_KEY),
        (f"anthropic key={ANTHROPIC_KEY}", ANTHROPIC_KEY),
        (f"Authorization: Bearer {JWT}", JWT),
        ("user ada.lovelace@example.com logged in", "ada.lovelace@example.com"),
        ("card 4111 1111 1111 1111 charged", "4111 1111 1111 1111"),
        ("card 4111-1111-1111-1111 charged", "4111-1111-1111-1111"),
        ("call me at +44 20 7946 0958", "7946 0958"),
        ("password=hunter2hunter2 ok", "hunter2hunter2"),
        ("tavily tvly-abcdefghijklmnop", "tvly-abcdefghijklmnop"),
    ],
)
def test_redact_masks_secrets_and_personal_data(raw: str, secret: str) -> None:
    out = redact(raw)
    assert secret not in out
    assert "REDACTED" in out


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "run 42 finished in 1.5 s with 123 tokens at 2026-01-15"
    assert redact(text) == text


def test_json_lines_carry_level_logger_message_and_context(log_stream: io.StringIO) -> None:
    with bind(user_id="u-1", run_id="r-9"):
        logging.getLogger("jarvis.test").info("run %s started", "r-9")
    [entry] = lines(log_stream)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "jarvis.test"
    assert entry["message"] == "run r-9 started"
    assert entry["user_id"] == "u-1" and entry["run_id"] == "r-9"
    assert "time" in entry


def test_secrets_are_masked_in_messages_args_extras_and_tracebacks(log_stream: io.StringIO) -> None:
    log = logging.getLogger("jarvis.test")
    log.warning("key %s", OPENAI_KEY, extra={"headers": {"authorization": f"Bearer {JWT}"}})
    try:
        raise RuntimeError(f"provider refused {ANTHROPIC_KEY}")
    except RuntimeError:
        log.exception("failed for ada@example.com")
    out = log_stream.getvalue()
    for secret in (OPENAI_KEY, JWT, ANTHROPIC_KEY, "ada@example.com"):
        assert secret not in out
    entries = lines(log_stream)
    assert "REDACTED" in entries[0]["message"]
    assert "RuntimeError" in entries[1]["exception"]


def test_a_raw_refresh_token_is_redacted_on_its_own() -> None:
    from jarvis.security.tokens import new_refresh_token

    tokens = [new_refresh_token() for _ in range(500)]
    for token in tokens:
        for raw in (
            token,
            f"cookie jarvis_refresh={token}; Path=/",
            f"Set-Cookie: jarvis_session={token}; HttpOnly; SameSite=lax; Path=/",
            f'{{"ticket": "{token}"}}',
            f"refresh '{token}' failed",
        ):
            assert token not in redact(raw), raw
    # Words, ids and hashes around it stay readable.
    assert redact("session 7b1e5c1e-2f4b-4c4e-9d55-2b1c7f0a9e11 refreshed") == (
        "session 7b1e5c1e-2f4b-4c4e-9d55-2b1c7f0a9e11 refreshed"
    )
    digest = "a" * 64
    assert redact(f"hash {digest}") == f"hash {digest}"
