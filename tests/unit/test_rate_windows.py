"""The rate limiter's window maths, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jarvis.services.rate_limits import RateDecision, decide, window_start

NOON = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offset", "window", "expected"),
    [
        (0, 60, NOON),
        (59.9, 60, NOON),
        (60, 60, NOON + timedelta(seconds=60)),
        (299, 300, NOON),
        (3599, 3600, NOON),
    ],
)
def test_windows_are_aligned_to_the_epoch(offset: float, window: int, expected: datetime) -> None:
    assert window_start(NOON + timedelta(seconds=offset), window) == expected


def test_within_the_limit_is_allowed_with_no_wait() -> None:
    now = NOON + timedelta(seconds=10)
    assert decide(3, 3, start=NOON, window_seconds=60, now=now) == RateDecision(True, 0.0, 3)


def test_over_the_limit_waits_for_the_window_to_end() -> None:
    decision = decide(4, 3, start=NOON, window_seconds=60, now=NOON + timedelta(seconds=45))
    assert decision == RateDecision(False, 15.0, 4)
    allowed, retry_after = decision
    assert (allowed, retry_after) == (False, 15.0)


def test_the_wait_is_at_least_one_second() -> None:
    end = NOON + timedelta(seconds=59, milliseconds=900)
    assert decide(9, 3, start=NOON, window_seconds=60, now=end).retry_after == 1.0
