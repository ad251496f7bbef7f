"""Per-user tool permissions: no row means the default (allowed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from jarvis.db.tables import UserToolPermission


class ToolPermissionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def states(self, user_id: uuid.UUID) -> dict[str, UserToolPermission]:
        rows = self.session.scalars(
            select(UserToolPermission).where(UserToolPermission.user_id == user_id)
        )
        return {row.tool_id: row for row in rows}

    def get(self, user_id: uuid.UUID, tool_id: str) -> UserToolPermission | None:
        return self.session.scalar(
            select(UserToolPermission).where(
                UserToolPermission.user_id == user_id, UserToolPermission.tool_id == tool_id
            )
        )

    def upsert(
        self, user_id: uuid.UUID, tool_ids: Iterable[str], granted: bool, when: datetime
    ) -> None:
        rows = [
            {"user_id": user_id, "tool_id": t, "granted": granted, "updated_at": when}
            for t in tool_ids
        ]
        if not rows:
            return
        stmt = insert(UserToolPermission).values(rows)
        self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[UserToolPermission.user_id, UserToolPermission.tool_id],
                set_={"granted": stmt.excluded.granted, "updated_at": stmt.excluded.updated_at},
            )
        )

    def delete(self, user_id: uuid.UUID, tool_ids: Iterable[str] | None = None) -> int:
        stmt = delete(UserToolPermission).where(UserToolPermission.user_id == user_id)
        if tool_ids is not None:
            stmt = stmt.where(UserToolPermission.tool_id.in_(list(tool_ids)))
        result = self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
