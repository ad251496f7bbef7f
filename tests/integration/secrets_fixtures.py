"""Fixtures shared by the secrets / permissions tests (import them into a test module)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, text

from jarvis.db.tables import User
from jarvis.identity import Principal


def insert_user(engine: Engine, tag: str) -> Principal:
    """A committed user written by the owner (no sign-up rules involved)."""
    uid = uuid.uuid4()
    email = f"{tag}-{uid.hex[:10]}@example.com"
    with engine.begin() as conn:
        conn.execute(
            User.__table__.insert().values(id=uid, email=email, password_hash="x", display_name=tag)
        )
    return Principal(user_id=uid, email=email, role="user", display_name=tag)


@pytest.fixture
def committed_user(owner_engine: Engine) -> Iterator[Callable[[str], Principal]]:
    """Make committed users; they (and their rows) are deleted after the test."""
    made: list[uuid.UUID] = []

    def make(tag: str) -> Principal:
        principal = insert_user(owner_engine, tag)
        made.append(principal.user_id)
        return principal

    yield make
    with owner_engine.begin() as conn:
        conn.execute(text("delete from users where id = any(:ids)"), {"ids": made})
