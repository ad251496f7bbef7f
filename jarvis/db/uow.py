"""Unit of work: one session, one transaction, the row-level-security user set inside it.

``with uow:`` opens a session; every transaction the session begins first runs
``set_config('app.user_id', ..., true)`` (transaction-local), so a pooled connection never
carries a previous user's identity. Work is rolled back unless ``uow.commit()`` is called.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal

from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from jarvis.errors import DatabaseError
from jarvis.identity import Principal

#: ``auth``: the narrow scope the auth service uses before a user is known (login by email,
#: refresh by token hash, registration). ``None``: an ordinary user transaction.
Scope = Literal["auth"] | None

_SET_CONTEXT = text(
    "select set_config('app.user_id', :user_id, true),"
    " set_config('app.user_role', :role, true),"
    " set_config('app.scope', :scope, true)"
)


class UnitOfWork:
    """A transaction scoped to one user (or to no user: then RLS shows no user rows)."""

    session: Session

    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        user_id: uuid.UUID | None = None,
        role: str | None = None,
        scope: Scope = None,
    ) -> None:
        self._session_factory = session_factory
        self.user_id = user_id
        self.role = role
        self.scope = scope

    def __enter__(self) -> UnitOfWork:
        self.session = self._session_factory()
        event.listen(self.session, "after_begin", self._set_context)
        return self

    def _set_context(self, session: Session, transaction: Any, connection: Any) -> None:
        try:
            connection.execute(
                _SET_CONTEXT,
                {
                    "user_id": str(self.user_id) if self.user_id else "",
                    "role": self.role or "",
                    "scope": self.scope or "",
                },
            )
        except OperationalError as exc:
            raise DatabaseError() from exc

    def act_as(self, user_id: uuid.UUID, role: str | None = None) -> None:
        """Switch the RLS user for the rest of this transaction (after login succeeds)."""
        self.user_id = user_id
        self.role = role or self.role
        if self.session.in_transaction():
            self.session.execute(
                _SET_CONTEXT,
                {"user_id": str(user_id), "role": self.role or "", "scope": self.scope or ""},
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.session.rollback()
        finally:
            event.remove(self.session, "after_begin", self._set_context)
            self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()


class UnitOfWorkFactory:
    """Builds units of work on one engine (or on a test's session factory)."""

    def __init__(
        self, engine: Engine | None = None, *, session_factory: Callable[[], Session] | None = None
    ):
        if session_factory is None:
            if engine is None:
                raise ValueError("an engine or a session factory is required")
            session_factory = sessionmaker(bind=engine, expire_on_commit=False)
        self._session_factory = session_factory

    def __call__(self, principal: Principal | None = None, *, scope: Scope = None) -> UnitOfWork:
        return UnitOfWork(
            self._session_factory,
            user_id=principal.user_id if principal else None,
            role=principal.role if principal else None,
            scope=scope,
        )

    def for_user_id(self, user_id: uuid.UUID, role: str = "user") -> UnitOfWork:
        return UnitOfWork(self._session_factory, user_id=user_id, role=role)
