"""Users' background jobs (0021): the rows behind the progress bars. Row-level security keeps a
user to their own jobs; the worker acts as the job's user."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jarvis.db.tables import Job


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, job: Job) -> Job:
        self.session.add(job)
        self.session.flush()
        return job

    def get(self, job_id: uuid.UUID) -> Job | None:
        return self.session.get(Job, job_id)

    def recent(self, user_id: uuid.UUID, kind: str | None, limit: int) -> builtins.list[Job]:
        query = select(Job).where(Job.user_id == user_id)
        if kind is not None:
            query = query.where(Job.kind == kind)
        return builtins.list(
            self.session.scalars(query.order_by(Job.created_at.desc(), Job.id).limit(limit))
        )

    def start(self, job_id: uuid.UUID, now: datetime) -> bool:
        """Mark a queued job running; False if it is not queued any more (run already)."""
        result = self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "queued")
            .values(state="running", started_at=now, updated_at=now)
        )
        return bool(getattr(result, "rowcount", 0))

    def progress(self, job_id: uuid.UUID, done: int, total: int, now: datetime) -> None:
        self.session.execute(
            update(Job).where(Job.id == job_id).values(done=done, total=total, updated_at=now)
        )

    def finish(
        self,
        job_id: uuid.UUID,
        *,
        state: str,
        now: datetime,
        summary: str | None = None,
        error: str | None = None,
        result: Any = None,
    ) -> None:
        self.session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                state=state,
                summary=summary,
                error=error,
                result=result,
                payload=None,
                updated_at=now,
                finished_at=now,
            )
        )
