"""Unit of work: one session, one transaction, the row-level-security user set inside it, and
the repositories that work in it (the cosmicpython pattern)::

    with services.uow(principal) as uow:
        uow.conversations.add(row)
        uow.commit()

Every transaction the session begins first runs ``set_config('app.user_id', ..., true)``
(transaction-local), so a pooled connection never carries a previous user's identity. There is
no wider scope: the few lookups made before a user is known (sign-in by email, refresh by token
hash, registration) call narrow ``SECURITY DEFINER`` functions (migration 0013), and
``app.user_role = 'admin'`` only counts when the acting user is an active admin in the database.
Work is
rolled back unless :meth:`UnitOfWork.commit` is called. A driver error raised inside the block
leaves it as a :mod:`jarvis.errors` type (:func:`jarvis.db.errors.translate`): services never
see SQLAlchemy or psycopg.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import cached_property
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from jarvis.db.errors import translate
from jarvis.db.repositories.api_keys import ApiKeyRepository
from jarvis.db.repositories.audit import AuditRepository
from jarvis.db.repositories.browser_credentials import BrowserCredentialRepository
from jarvis.db.repositories.chat import (
    ConversationRepository,
    MessageRepository,
    RunRepository,
    ToolCallRepository,
)
from jarvis.db.repositories.demo import DemoDataRepository
from jarvis.db.repositories.jobs import JobRepository
from jarvis.db.repositories.knowledge_graph import KnowledgeGraphRepository
from jarvis.db.repositories.mcp import McpServerRepository
from jarvis.db.repositories.memory import MemoryRepository
from jarvis.db.repositories.permissions import ToolPermissionRepository
from jarvis.db.repositories.pricing import PricingRepository
from jarvis.db.repositories.rate_limits import LockoutRepository, RateLimitRepository
from jarvis.db.repositories.run_log import RunLogRepository
from jarvis.db.repositories.secrets import SecretRepository, UserIdRepository
from jarvis.db.repositories.tokens import RefreshTokenRepository
from jarvis.db.repositories.usage import UsageRepository
from jarvis.db.repositories.users import AppSettingsRepository, UserRepository
from jarvis.errors import DatabaseUnavailableError
from jarvis.identity import Principal

# The acting user for row-level security; and no graph version raised yet in this unit of work
# (migration 0030 raises it once per transaction: a test's units of work are savepoints of one).
_SET_CONTEXT = text(
    "select set_config('app.user_id', :user_id, true), set_config('app.user_role', :role, true), "
    "set_config('jarvis.graph_written', '', true)"
)

#: The repositories a unit of work carries (attribute name -> built lazily on first use).
_REPOSITORIES = (
    "users",
    "app_settings",
    "tokens",
    "rate_limits",
    "lockouts",
    "audit",
    "secrets",
    "secret_owners",
    "permissions",
    "conversations",
    "runs",
    "messages",
    "tool_calls",
    "memories",
    "graph",
    "prices",
    "usage",
    # -- usage area --
    "demo_data",
    # -- runs area --
    "run_log",
    "api_keys",
    "browser_credentials",
    "mcp_servers",
    "jobs",
)


class UnitOfWork:
    """A transaction scoped to one user (or to no user: then RLS shows no user rows)."""

    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        user_id: uuid.UUID | None = None,
        role: str | None = None,
        set_context: bool = True,
    ) -> None:
        self._session_factory = session_factory
        self._set_context_on_begin = set_context
        self._session: Session | None = None
        self.user_id = user_id
        self.role = role

    # -- the transaction ------------------------------------------------------------------

    def __enter__(self) -> UnitOfWork:
        for name in _REPOSITORIES:  # a reused unit of work gets repositories on its new session
            self.__dict__.pop(name, None)
        self._session = self._session_factory()
        if self._set_context_on_begin:
            event.listen(self._session, "after_begin", self._set_context)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self._session
        if session is None:
            return
        try:
            session.rollback()
        except SQLAlchemyError:
            if exc is None:
                raise DatabaseUnavailableError() from None
        finally:
            if self._set_context_on_begin:
                event.remove(session, "after_begin", self._set_context)
            session.close()
            self._session = None
        if exc is not None and isinstance(exc, SQLAlchemyError):
            raise translate(exc) from exc

    def _set_context(self, _session: Session, _transaction: Any, connection: Any) -> None:
        connection.execute(
            _SET_CONTEXT,
            {"user_id": str(self.user_id) if self.user_id else "", "role": self.role or ""},
        )

    @property
    def session(self) -> Session:
        """The SQLAlchemy session: for repositories (and ``jarvis.db``) only, never services."""
        if self._session is None:
            raise RuntimeError("the unit of work is not open (use `with uow:`)")
        return self._session

    def commit(self) -> None:
        """Make the work so far permanent (a later failure no longer undoes it)."""
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

    def flush(self) -> None:
        """Send pending changes (to read generated values, or to surface a conflict now)."""
        self.session.flush()

    def act_as(self, user_id: uuid.UUID, role: str | None = None) -> None:
        """Switch the RLS user for the rest of this transaction (once sign-in, a refresh token
        or registration established who it is)."""
        self.user_id = user_id
        self.role = role or self.role
        if self.session.in_transaction():
            self.session.execute(_SET_CONTEXT, {"user_id": str(user_id), "role": self.role or ""})

    # -- repositories -----------------------------------------------------------------------

    @cached_property
    def users(self) -> UserRepository:
        return UserRepository(self.session)

    @cached_property
    def app_settings(self) -> AppSettingsRepository:
        return AppSettingsRepository(self.session)

    @cached_property
    def tokens(self) -> RefreshTokenRepository:
        return RefreshTokenRepository(self.session)

    @cached_property
    def rate_limits(self) -> RateLimitRepository:
        return RateLimitRepository(self.session)

    @cached_property
    def lockouts(self) -> LockoutRepository:
        return LockoutRepository(self.session)

    @cached_property
    def audit(self) -> AuditRepository:
        return AuditRepository(self.session)

    @cached_property
    def secrets(self) -> SecretRepository:
        return SecretRepository(self.session)

    @cached_property
    def secret_owners(self) -> UserIdRepository:
        return UserIdRepository(self.session)

    @cached_property
    def permissions(self) -> ToolPermissionRepository:
        return ToolPermissionRepository(self.session)

    @cached_property
    def conversations(self) -> ConversationRepository:
        return ConversationRepository(self.session)

    @cached_property
    def runs(self) -> RunRepository:
        return RunRepository(self.session)

    @cached_property
    def messages(self) -> MessageRepository:
        return MessageRepository(self.session)

    @cached_property
    def tool_calls(self) -> ToolCallRepository:
        return ToolCallRepository(self.session)

    @cached_property
    def memories(self) -> MemoryRepository:
        return MemoryRepository(self.session)

    @cached_property
    def graph(self) -> KnowledgeGraphRepository:
        return KnowledgeGraphRepository(self.session)

    @cached_property
    def prices(self) -> PricingRepository:
        return PricingRepository(self.session)

    @cached_property
    def usage(self) -> UsageRepository:
        return UsageRepository(self.session)

    # -- usage area --

    @cached_property
    def demo_data(self) -> DemoDataRepository:
        """Bulk ``COPY`` of generated demo rows (owner transactions only)."""
        return DemoDataRepository(self.session)

    # -- runs area --

    @cached_property
    def run_log(self) -> RunLogRepository:
        """Server-side runs: admission, the event log, cancel requests, process heartbeats."""
        return RunLogRepository(self.session)

    @cached_property
    def api_keys(self) -> ApiKeyRepository:
        """Personal API keys (hashed)."""
        return ApiKeyRepository(self.session)

    @cached_property
    def browser_credentials(self) -> BrowserCredentialRepository:
        """Browser session tickets and cookie tokens (hashed)."""
        return BrowserCredentialRepository(self.session)

    @cached_property
    def mcp_servers(self) -> McpServerRepository:
        """Admin-registered MCP servers and their discovered tools (instance-wide)."""
        return McpServerRepository(self.session)

    @cached_property
    def jobs(self) -> JobRepository:
        """Background jobs' progress rows (the user's own)."""
        return JobRepository(self.session)


class UnitOfWorkFactory:
    """Builds units of work on one engine (or on a test's session factory)."""

    def __init__(
        self, engine: Engine | None = None, *, session_factory: Callable[[], Session] | None = None
    ):
        # Self-contained SQL functions (they set the RLS user themselves) run in autocommit
        # mode: one round trip per call instead of BEGIN + set_config + call + COMMIT.
        self._statement_factory: Callable[[], Session] | None = None
        if session_factory is None:
            if engine is None:
                raise ValueError("an engine or a session factory is required")
            session_factory = sessionmaker(bind=engine, expire_on_commit=False)
            self._statement_factory = sessionmaker(
                bind=engine.execution_options(isolation_level="AUTOCOMMIT"),
                expire_on_commit=False,
            )
        self._session_factory = session_factory

    @property
    def shares_one_connection(self) -> bool:
        """True when every unit of work runs on one given connection (a test's rolled-back
        transaction): background threads must not use it, so runs execute inline."""
        return self._statement_factory is None

    def statements(self, principal: Principal | None = None) -> UnitOfWork:
        """A unit of work for single statements that need no transaction around them (the
        run functions of migration 0011): autocommit, no ``set_config`` round trip. Where only
        a transaction is available (a test's rolled-back connection) an ordinary one."""
        if self._statement_factory is None:
            return self(principal)
        return UnitOfWork(
            self._statement_factory,
            user_id=principal.user_id if principal else None,
            role=principal.role if principal else None,
            set_context=False,
        )

    def __call__(self, principal: Principal | None = None) -> UnitOfWork:
        return UnitOfWork(
            self._session_factory,
            user_id=principal.user_id if principal else None,
            role=principal.role if principal else None,
        )

    def for_user_id(self, user_id: uuid.UUID, role: str = "user") -> UnitOfWork:
        return UnitOfWork(self._session_factory, user_id=user_id, role=role)
