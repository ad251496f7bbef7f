"""Run events serialise to JSON for SSE; tool results are bounded in size."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

from jarvis.services.chat import events as ev
from jarvis.services.chat.tool_calls import MAX_RESULT_BYTES, bound_result


def test_every_event_type_serialises_with_its_type_and_plain_json_values() -> None:
    run = uuid.uuid4()
    samples = [
        ev.RunStarted(run, uuid.uuid4(), "offline", "m", uuid.uuid4(), True, 0.85),
        ev.TextDelta(run, "Hello **world**"),
        ev.ToolCallStarted(run, "c1", "calculator", {"expression": "1+1"}),
        ev.ToolCallFinished(run, "c1", "calculator", "ok", {"result": 2}, 3),
        ev.ToolCallDenied(run, "c2", "web_search", "not allowed"),
        ev.UsageUpdate(run, 10, 5, 15, Decimal("0.000123"), False),
        ev.RunCompleted(run, uuid.uuid4(), "Hello", 15, Decimal("0.000123"), False, 2),
        ev.RunFailed(run, "Step limit reached"),
        ev.RunCancelled(run),
    ]
    names = [json.loads(e.to_json())["type"] for e in samples]
    assert names == [
        "run_started",
        "text_delta",
        "tool_call_started",
        "tool_call_finished",
        "tool_call_denied",
        "usage",
        "run_completed",
        "run_failed",
        "run_cancelled",
    ]
    usage = json.loads(samples[5].to_json())
    assert usage == {
        "type": "usage",
        "run_id": str(run),
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "cost_usd": "0.000123",
        "estimated": False,
        "unpriced": False,
    }


def test_small_results_pass_and_large_ones_are_truncated_and_flagged() -> None:
    assert bound_result({"a": 1}) == {"a": 1}
    assert bound_result([1, 2]) == {"value": [1, 2]}
    big = bound_result({"text": "é" * 10_000})
    assert big["truncated"] is True and big["original_bytes"] > 20_000
    assert len(json.dumps(big, ensure_ascii=False).encode()) <= MAX_RESULT_BYTES
