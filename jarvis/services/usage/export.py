"""CSV export of what the usage page shows (the daily breakdown, the runs listed)."""

from __future__ import annotations

import csv
import io

from jarvis.services.usage.views import DailyUsage, RunRow

DAILY_CSV_COLUMNS = (
    "day",
    "provider",
    "model",
    "runs",
    "failed_runs",
    "unpriced_runs",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "total_tokens",
    "cost_usd",
)
RUNS_CSV_COLUMNS = (
    "started_at",
    "user",
    "provider",
    "model",
    "status",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "total_tokens",
    "cost_usd",
    "unpriced",
    "price_version",
)


def daily_csv(rows: list[DailyUsage]) -> str:
    """The daily breakdown as CSV (unpriced cost stays a number: priced runs only)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(DAILY_CSV_COLUMNS)
    for r in rows:
        w.writerow(
            [
                r.day.isoformat(),
                r.provider,
                r.model,
                r.runs,
                r.failed_runs,
                r.unpriced_runs,
                r.input_tokens,
                r.output_tokens,
                r.cache_read_tokens,
                r.cache_write_tokens,
                r.total_tokens,
                f"{r.cost:.6f}",
            ]
        )
    return buf.getvalue()


def runs_csv(rows: list[RunRow]) -> str:
    """The runs shown as CSV; an unpriced run's cost is empty, never 0."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RUNS_CSV_COLUMNS)
    for r in rows:
        w.writerow(
            [
                r.started_at.isoformat(),
                r.user_email,
                r.provider,
                r.model,
                r.status,
                r.input_tokens,
                r.output_tokens,
                r.cache_read_tokens,
                r.cache_write_tokens,
                r.total_tokens,
                "" if r.cost is None else f"{r.cost:.6f}",
                "yes" if r.unpriced else "no",
                "" if r.price_version is None else r.price_version,
            ]
        )
    return buf.getvalue()
