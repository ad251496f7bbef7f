"""A throwaway embedded PostgreSQL (own temp dir), migrated, for the benchmarks.

``keep``: use (and keep) this folder instead, so a large data set is generated once and reused
by the next runs while iterating (each benchmark skips its load when the data is there).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jarvis.config import Settings, load_settings


@contextlib.contextmanager
def benchmark_database(keep: str | None = None) -> Iterator[Settings]:
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    from jarvis.db.embedded import EmbeddedPostgres
    from jarvis.db.migrate import upgrade

    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="jarvis-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(root / "pg", delete_on_stop=not keep)
    url = server.start()
    try:
        settings = load_settings(
            env="test",
            database_url=url,
            data_dir=root / "data",
            master_key="33" * 32,
            jwt_secret="bench-jwt-secret-" + "x" * 40,
            db_app_password="bench-app-password",
        )
        upgrade(settings)
        yield settings
    finally:
        server.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def timed_ms(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Wall times (ms) of ``repeat`` calls and the last result."""
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times, value


def p50(values: list[float]) -> float:
    return statistics.median(values)


def ratio_line(label: str, ours: float, other: float, other_name: str, target: str = "") -> str:
    """``label: 4.1 ms vs 14.0 ms (<other_name>) = 3.4x faster  [target ...]``."""
    verdict = f"{other / ours:,.1f}x faster" if ours > 0 else "n/a"
    tail = f"   target {target}" if target else ""
    return f"{label}: {ours:,.2f} ms vs {other:,.2f} ms ({other_name}) = {verdict}{tail}"
