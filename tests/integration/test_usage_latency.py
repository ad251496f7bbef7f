"""p50 / p95 latency per model on the usage page's service, against a Python computation."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from jarvis.services.usage import UsageQuery
from tests import factories
from tests.integration.chat_helpers import make_user


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont)."""
    ordered = sorted(values)
    pos = p * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def test_latency_percentiles_per_model_match_python(services) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    user, other = make_user(services), make_user(services)
    now = services.clock.now()
    today = now.date()
    expected: dict[str, list[float]] = {"gpt-4o": [], "claude-3-5-haiku-latest": []}
    with services.uow(user) as w:
        for i in range(40):
            model = "gpt-4o" if i % 3 else "claude-3-5-haiku-latest"
            start = now - timedelta(hours=1, minutes=i)
            ms = rng.randint(200, 30_000)
            factories.add_run(
                w,
                user,
                model=model,
                status="completed",
                started_at=start,
                finished_at=start + timedelta(milliseconds=ms),
            )
            expected[model].append(float(ms))
        # Left out: a failed run, a running one, one from before the range.
        factories.add_run(
            w,
            user,
            model="gpt-4o",
            status="failed",
            started_at=now - timedelta(hours=2),
            finished_at=now - timedelta(hours=2) + timedelta(seconds=900),
        )
        factories.add_run(w, user, model="gpt-4o", started_at=now - timedelta(minutes=5))
        old = now - timedelta(days=40)
        factories.add_run(
            w,
            user,
            model="gpt-4o",
            status="completed",
            started_at=old,
            finished_at=old + timedelta(hours=1),
        )
        w.commit()
    with services.uow(other) as w:  # someone else's slow runs are not the user's
        factories.add_run(
            w,
            other,
            model="gpt-4o",
            status="completed",
            started_at=now - timedelta(hours=1),
            finished_at=now,
        )
        w.commit()

    query = UsageQuery(start=today - timedelta(days=29), end=today)
    rows = {r.model: r for r in services.usage.latency(user, query)}
    assert set(rows) == set(expected)
    for model, values in expected.items():
        assert rows[model].runs == len(values)
        assert rows[model].p50_ms == pytest.approx(percentile(values, 0.5), abs=0.01)
        assert rows[model].p95_ms == pytest.approx(percentile(values, 0.95), abs=0.01)
    # The dashboard shows the same figures, the most used model first.
    dash = services.usage.dashboard(user, query)
    assert [r.model for r in dash.latency] == ["gpt-4o", "claude-3-5-haiku-latest"]


def test_a_long_range_is_measured_on_its_latest_runs(services) -> None:  # type: ignore[no-untyped-def]
    """Latency is read from the range's latest completed runs (a bounded sample, read
    backwards from the index), not from every run of a month of all users."""
    user = make_user(services)
    now = services.clock.now().replace(microsecond=0)
    with services.uow(user) as w:
        for i, seconds in enumerate([100, 100, 100, 1, 2, 3]):  # oldest first
            start = now - timedelta(hours=10 - i)
            factories.add_run(
                w,
                user,
                model="gpt-4o",
                status="completed",
                started_at=start,
                finished_at=start + timedelta(seconds=seconds),
            )
        w.commit()
        latest = w.usage.latency(now - timedelta(days=1), now, user_id=user.user_id, sample=3)
        every = w.usage.latency(now - timedelta(days=1), now, user_id=user.user_id)
    assert [(r.runs, r.p50_ms) for r in latest] == [(3, 2000.0)]  # the three latest: 1, 2, 3 s
    assert [(r.runs, r.p50_ms) for r in every] == [(6, 51500.0)]
