"""A throwaway embedded PostgreSQL (own temp dir), migrated, for the benchmarks."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from jarvis.config import Settings, load_settings


@contextlib.contextmanager
def benchmark_database() -> Iterator[Settings]:
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    from jarvis.db.embedded import EmbeddedPostgres
    from jarvis.db.migrate import upgrade

    root = Path(tempfile.mkdtemp(prefix="jarvis-bench-"))
    server = EmbeddedPostgres(root / "pg", delete_on_stop=True)
    url = server.start()
    try:
        settings = load_settings(
            env="test",
            database_url=url,
            data_dir=root / "data",
            master_key=secrets.token_hex(32),
            jwt_secret=secrets.token_urlsafe(48),
            db_app_password=secrets.token_urlsafe(16),
        )
        upgrade(settings)
        yield settings
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]
