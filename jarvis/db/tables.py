"""SQLAlchemy models of every table (SPEC.md "Data model").

Every user-owned table has a ``user_id`` column and row-level security (see the first migration).
Embeddings are ``halfvec`` without a fixed size: each embedding model has its own (wordllama 256,
lexical / OpenAI / local 384, ``jarvis.llm.embedders.MODEL_DIMS``); every row names its model and
searches compare one model's vectors only (migration 0012).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pgvector.sqlalchemy import HALFVEC
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB, TSVECTOR, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Tables whose rows belong to one user and are protected by row-level security.
USER_OWNED_TABLES: tuple[str, ...] = (
    "refresh_tokens",
    "user_secrets",
    "user_tool_permissions",
    "conversations",
    "agent_runs",
    "messages",
    "tool_calls",
    "memories",
    "kg_entities",
    "kg_relations",
    "kg_graph_versions",
    "audit_events",
    "usage_daily",
    "tool_usage_daily",
    "run_events",
    "api_keys",
    "usage_user_daily",
    "browser_credentials",
    "jobs",
)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONB, uuid.UUID: UUID(as_uuid=True)}


def _pk() -> Mapped[uuid.UUID]:
    return mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid()
    )


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


def _owner() -> Mapped[uuid.UUID]:
    return mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_email_lower", func.lower(text("email")), unique=True),
        CheckConstraint("role in ('admin', 'user')", name="ck_users_role"),
    )

    id: Mapped[uuid.UUID] = _pk()
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False, server_default="")
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False, server_default="user")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, server_default="UTC")
    monthly_budget_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    # [memory] The embedding model this user chose (``jarvis embeddings reembed``); NULL: the
    # instance default (``JARVIS_EMBEDDER``). Memories and graph entities both follow it.
    embedding_model: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = _now()
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AppSetting(Base):
    """Instance-wide switches (sign-up open, default budget...). Readable by all, admin writes."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    updated_at: Mapped[datetime] = _now()


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index("ix_refresh_tokens_user_id_issued_at", "user_id", "issued_at"),
        Index("ix_refresh_tokens_family_id", "family_id"),
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = _owner()
    family_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("refresh_tokens.id", ondelete="SET NULL")
    )
    issued_at: Mapped[datetime] = _now()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip: Mapped[str | None] = mapped_column(INET)


class UserSecret(Base):
    __tablename__ = "user_secrets"
    __table_args__ = (
        UniqueConstraint("user_id", "provider", "name", name="uq_user_secrets_user_provider_name"),
        CheckConstraint(
            "provider in ('openai','anthropic','openai_compatible','tavily','composio','custom')",
            name="ck_user_secrets_provider",
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = _owner()
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    nonce: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    key_version: Mapped[int] = mapped_column(Integer, nullable=False)
    wrapped_dek: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    last4: Mapped[str] = mapped_column(String(4), nullable=False)
    base_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserToolPermission(Base):
    __tablename__ = "user_tool_permissions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    tool_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean, nullable=False)
    updated_at: Mapped[datetime] = _now()


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_user_id_updated_at", "user_id", "updated_at"),)

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = _owner()
    title: Mapped[str] = mapped_column(String(200), nullable=False, server_default="New chat")
    provider: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class AgentRun(Base):
    __tablename__ = "agent_runs"
    __table_args__ = (
        Index("ix_agent_runs_user_id_started_at", "user_id", "started_at"),
        Index("ix_agent_runs_conversation_id", "conversation_id"),
        Index("ix_agent_runs_running", "status", postgresql_where=text("status = 'running'")),
        Index(
            "ix_agent_runs_conversation_running",
            "conversation_id",
            postgresql_where=text("status = 'running'"),
        ),
        # Admin "recent runs of everyone" and reprice by date (usage capability, 0004).
        Index("ix_agent_runs_started_at", "started_at"),
        CheckConstraint(
            "status in ('running','completed','failed','cancelled')", name="ck_agent_runs_status"
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = _owner()
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="running")
    input_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    output_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    total_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    total_cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))
    price_version: Mapped[int | None] = mapped_column(Integer)
    unpriced: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = _now()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A `running` run whose process (``worker_id``, a ``run_workers`` row) stopped beating, or
    # without a process and an old heartbeat, is marked failed (jarvis_fail_stale_runs, 0011).
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    worker_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # Stop, pressed anywhere: the process running the run stops it within a second.
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What admission reserved of the month's budget (released when the run ends).
    reserved_usd: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))
    # Tokens estimated from the text because the provider reported none (stopped, failed).
    usage_estimated: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )


class RunEvent(Base):
    """The append-only event log of a run (0011): what every follower replays and follows."""

    __tablename__ = "run_events"
    __table_args__ = (Index("ix_run_events_user_id_created_at", "user_id", "created_at"),)

    run_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("agent_runs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[uuid.UUID] = _owner()
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = _now()


class RunWorker(Base):
    """An app process that executes runs, and its heartbeat (no user data, no row security)."""

    __tablename__ = "run_workers"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[datetime] = _now()
    heartbeat_at: Mapped[datetime] = _now()


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_id_created_at", "conversation_id", "created_at"),
        Index("ix_messages_run_id", "run_id"),
        Index("ix_messages_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = _pk()
    run_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("agent_runs.id", ondelete="CASCADE")
    )
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = _owner()
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _now()


class ToolCall(Base):
    __tablename__ = "tool_calls"
    __table_args__ = (
        Index("ix_tool_calls_run_id", "run_id"),
        Index("ix_tool_calls_user_id_created_at", "user_id", "created_at"),
        CheckConstraint("status in ('ok','error','denied')", name="ck_tool_calls_status"),
    )

    id: Mapped[uuid.UUID] = _pk()
    run_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("agent_runs.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[uuid.UUID] = _owner()
    tool_id: Mapped[str] = mapped_column(String(100), nullable=False)
    arguments: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _now()


class Memory(Base):
    __tablename__ = "memories"
    __table_args__ = (
        Index("ix_memories_user_id_created_at", "user_id", "created_at"),
        # [memory] Per-user exact search reads the user's vectors from this covering index
        # (index-only scan, rows of one user adjacent). Users with very many memories also get
        # a partial HNSW index of their own (``MemoryIndexes``); there is no global HNSW: no
        # query searches across users, and through it a per-user query loses rows.
        Index(
            "ix_memories_user_model_embedding",
            "user_id",
            "embedding_model",
            postgresql_include=["id", "embedding"],
        ),
        Index("ix_memories_content_tsv", "content_tsv", postgresql_using="gin"),
        # A vector without a direction has no cosine distance (NaN): never stored.
        CheckConstraint(
            "embedding IS NULL OR l2_norm(embedding) > 0", name="ck_memories_embedding_nonzero"
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = _owner()
    content: Mapped[str] = mapped_column(Text, nullable=False)
    # NULL: nothing to embed with ``embedding_model`` (e.g. a legacy zero vector); such a row is
    # found by browsing and full text, never by vector distance.
    embedding: Mapped[Any | None] = mapped_column(HALFVEC())
    embedding_model: Mapped[str] = mapped_column(String(100), nullable=False)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, server_default="{}"
    )
    source: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _now()
    last_accessed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # [memory] Full-text side of hybrid search (generated, never written by the app).
    content_tsv: Mapped[Any] = mapped_column(
        TSVECTOR, Computed("to_tsvector('english'::regconfig, content)", persisted=True)
    )


class KgEntity(Base):
    __tablename__ = "kg_entities"
    __table_args__ = (
        Index("ix_kg_entities_user_id_created_at", "user_id", "created_at"),
        # [memory] Name search: trigram similarity / substring, and exact (case-insensitive).
        Index(
            "ix_kg_entities_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        Index("ix_kg_entities_user_id_lower_name", "user_id", func.lower(text("name"))),
        # [graph] A user's entities in name order (index only): the neighbourhood keeps a hub's
        # first neighbours by name without looking each one up; the entity list pages by it.
        Index("ix_kg_entities_user_id_name", "user_id", "name", "id"),
        # [memory] Meaning search is an exact scan of the user's entities of one model.
        Index(
            "ix_kg_entities_user_model_embedding",
            "user_id",
            "embedding_model",
            postgresql_include=["id", "embedding"],
        ),
        CheckConstraint(
            "embedding IS NULL OR l2_norm(embedding) > 0", name="ck_kg_entities_embedding_nonzero"
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = _owner()
    name: Mapped[str] = mapped_column(String(300), nullable=False)
    type: Mapped[str] = mapped_column(String(100), nullable=False, server_default="thing")
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    embedding: Mapped[Any | None] = mapped_column(HALFVEC())
    embedding_model: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class KgRelation(Base):
    __tablename__ = "kg_relations"
    __table_args__ = (
        # [graph] Each end's relations with the far end's name before its id (0022): a node's
        # neighbours come out in name order, so a capped walk reads a level's first names and
        # not the whole level; a pair is probed by (source, target name, target). Both include
        # what the walk reads (the row-level-security user, type, validity, the id): a level is
        # an index-only scan, no heap visit per relation.
        Index(
            "ix_kg_relations_source_id_target_name",
            "source_id",
            "target_name",
            "target_id",
            postgresql_include=["id", "user_id", "type", "valid_from", "valid_to"],
        ),
        Index(
            "ix_kg_relations_target_id_source_name",
            "target_id",
            "source_name",
            "source_id",
            postgresql_include=["id", "user_id", "type", "valid_from", "valid_to"],
        ),
        Index("ix_kg_relations_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = _owner()
    source_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("kg_entities.id", ondelete="CASCADE"), nullable=False
    )
    target_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("kg_entities.id", ondelete="CASCADE"), nullable=False
    )
    # The ends' names, written by the database (a trigger on insert, and on every rename).
    source_name: Mapped[str] = mapped_column(
        String(300), nullable=False, server_default=FetchedValue()
    )
    target_name: Mapped[str] = mapped_column(
        String(300), nullable=False, server_default=FetchedValue()
    )
    type: Mapped[str] = mapped_column(String(100), nullable=False)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    weight: Mapped[float] = mapped_column(Float, nullable=False, server_default="1.0")
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()


class KgGraphVersion(Base):
    """A number per user raised by every statement that writes their entities or relations
    (triggers, migration 0030): a process's in-memory copy of the graph is current while it
    matches. No row: version 0."""

    __tablename__ = "kg_graph_versions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(BigInteger, nullable=False)


class ModelPrice(Base):
    """One price version. The row id is the price version recorded on each run."""

    __tablename__ = "model_prices"
    __table_args__ = (
        UniqueConstraint("provider", "model", "effective_from", name="uq_model_prices_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    input_per_mtok: Mapped[Decimal] = mapped_column(Numeric(12, 6), nullable=False)
    output_per_mtok: Mapped[Decimal] = mapped_column(Numeric(12, 6), nullable=False)
    cache_read_per_mtok: Mapped[Decimal] = mapped_column(
        Numeric(12, 6), nullable=False, server_default="0"
    )
    cache_write_per_mtok: Mapped[Decimal] = mapped_column(
        Numeric(12, 6), nullable=False, server_default="0"
    )
    effective_from: Mapped[date] = mapped_column(Date, nullable=False)
    created_at: Mapped[datetime] = _now()


class AuditEvent(Base):
    __tablename__ = "audit_events"
    # Append-only: inserts must not need RETURNING (which would need read permission).
    __mapper_args__ = {"eager_defaults": False}
    __table_args__ = (
        Index("ix_audit_events_user_id_created_at", "user_id", "created_at"),
        Index("ix_audit_events_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = _pk()
    # Null for events about no known account (a failed login with an unknown email).
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    ip: Mapped[str | None] = mapped_column(INET)
    created_at: Mapped[datetime] = _now()


class RateLimitBucket(Base):
    """Fixed-window counters shared by every app process (login throttling, message rate).

    Keys hold sign-in IPs and user ids: the app role reaches the table only through definer
    functions, one key at a time (migration 0013)."""

    __tablename__ = "rate_limit_buckets"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class AccountLockout(Base):
    """Failed sign-ins per login name (known or not) and the growing lockout (migration 0002).

    Not user-owned (keyed by the normalised email, so unknown emails lock the same way); the
    app role reaches it only through definer functions, one key at a time (migration 0013).
    """

    __tablename__ = "account_lockouts"

    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    lockouts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UsageDaily(Base):
    """Daily usage rollup per user, local day (the user's time zone), provider and model.

    Kept current in the run's own transaction (``UsageRepository.add_run_to_rollups``), by
    stale-run recovery, and rebuilt in bulk (demo seed, ``jarvis usage reprice``), all through
    the one SQL function ``jarvis_usage_rollup_add`` (0010). Usage capability (0004).
    """

    __tablename__ = "usage_daily"
    __table_args__ = (Index("ix_usage_daily_day", "day"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    runs: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    failed_runs: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    unpriced_runs: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    input_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    output_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    total_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    cost: Mapped[Decimal] = mapped_column(Numeric(18, 6), nullable=False, server_default="0")


class ToolUsageDaily(Base):
    """Daily tool-call rollup per user, local day and tool (calls, errors, latency)."""

    __tablename__ = "tool_usage_daily"
    __table_args__ = (Index("ix_tool_usage_daily_day", "day"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    tool_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    errors: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    denied: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    latency_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    latency_ms_sum: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    latency_ms_max: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class ApiKey(Base):
    """A personal API key (0014): shown once, only its SHA-256 kept; acts as its user."""

    __tablename__ = "api_keys"
    __table_args__ = (
        Index("ix_api_keys_user_id_created_at", "user_id", "created_at"),
        UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = _owner()
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UsageDailyAll(Base):
    """Everyone's daily usage per local day, provider, model and shard (0012): what the admin's
    all-users charts read, a few hundred rows a day instead of one per user.

    Kept by row triggers on ``usage_daily`` (any change there, whichever way it is made, adds its
    difference here), so the one rollup rule stays ``jarvis_usage_rollup_add``. ``shard`` (a
    user's fixed eighth) spreads concurrent runs of different users over eight rows, so they do
    not queue on one row. Only admins read it; only the trigger writes it.
    """

    __tablename__ = "usage_daily_all"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    runs: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    failed_runs: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    unpriced_runs: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    input_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    output_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    total_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    cost: Mapped[Decimal] = mapped_column(Numeric(18, 6), nullable=False, server_default="0")


class ToolUsageDailyAll(Base):
    """Everyone's daily tool calls per local day, tool and shard (0012; see UsageDailyAll)."""

    __tablename__ = "tool_usage_daily_all"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    tool_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    errors: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    denied: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    latency_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    latency_ms_sum: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    latency_ms_max: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class UsageUserDaily(Base):
    """Each user's daily totals over all models (0012): the admin's ranking reads one row per
    user and day instead of one per model. Kept by a row trigger on ``usage_daily``."""

    __tablename__ = "usage_user_daily"
    __table_args__ = (Index("ix_usage_user_daily_day", "day"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    runs: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    unpriced_runs: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    total_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    cost: Mapped[Decimal] = mapped_column(Numeric(18, 6), nullable=False, server_default="0")


class BrowserCredential(Base):
    """A browser's hold on a session (0015): a one-time ticket, then the HttpOnly cookie's token.

    Only SHA-256 hashes are stored. Created with ``ticket_hash`` at sign-in; redeeming the ticket
    clears it and sets ``token_hash``. The token lives while its session (refresh-token family
    ``session_id``) does, until ``expires_at`` (the session's) or ``revoked_at`` (replaced)."""

    __tablename__ = "browser_credentials"
    __table_args__ = (
        Index("ix_browser_credentials_user_id_session_id", "user_id", "session_id"),
        UniqueConstraint("ticket_hash", name="uq_browser_credentials_ticket_hash"),
        UniqueConstraint("token_hash", name="uq_browser_credentials_token_hash"),
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = _owner()
    session_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    #: The user's role when the ticket was issued: a token outlived by a role change is replaced.
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    ticket_hash: Mapped[str | None] = mapped_column(String(64))
    ticket_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    token_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _now()
    redeemed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class McpServer(Base):
    """An MCP server an administrator registered (0019): instance-wide, read by every session,
    written by verified admins only. ``headers`` (http) / ``env`` (stdio) name which provider's
    secret *of the calling user* fills each header or variable; no secret value lives here."""

    __tablename__ = "mcp_servers"
    __table_args__ = (
        UniqueConstraint("name", name="uq_mcp_servers_name"),
        CheckConstraint("name ~ '^[a-z][a-z0-9_-]{0,31}$'", name="ck_mcp_servers_name"),
        CheckConstraint(
            "(transport = 'stdio' AND command IS NOT NULL AND url IS NULL)"
            " OR (transport = 'http' AND url IS NOT NULL AND command IS NULL)",
            name="ck_mcp_servers_transport",
        ),
        CheckConstraint("timeout_seconds BETWEEN 1 AND 300", name="ck_mcp_servers_timeout_seconds"),
        CheckConstraint(
            "max_result_bytes BETWEEN 256 AND 1000000", name="ck_mcp_servers_max_result_bytes"
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    name: Mapped[str] = mapped_column(String(32), nullable=False)
    transport: Mapped[str] = mapped_column(String(8), nullable=False)
    command: Mapped[str | None] = mapped_column(Text)
    args: Mapped[list[str]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    url: Mapped[str | None] = mapped_column(Text)
    #: ``[{"name": "Authorization", "prefix": "Bearer ", "secret_provider": "composio"}]``
    headers: Mapped[list[dict[str, str]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    #: ``[{"name": "COMPOSIO_API_KEY", "prefix": "", "secret_provider": "composio"}]``
    env: Mapped[list[dict[str, str]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    default_allowed: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    timeout_seconds: Mapped[int] = mapped_column(Integer, nullable=False, server_default="20")
    max_result_bytes: Mapped[int] = mapped_column(Integer, nullable=False, server_default="16384")
    discovery_error: Mapped[str | None] = mapped_column(Text)
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class McpTool(Base):
    """One tool a server listed at its last discovery (0019)."""

    __tablename__ = "mcp_tools"

    server_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("mcp_servers.id", ondelete="CASCADE"),
        primary_key=True,
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    input_schema: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Job(Base):
    """A user's background job as they see it (0021): what it is, how far it got, how it ended.

    The queue itself is procrastinate's (schema ``procrastinate``); its job carries only this
    row's id and its user's. ``payload`` is the job's input (an uploaded file), cleared at the
    end; ``result`` is what the page shows besides the summary (an import's rejected rows)."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_user_id_created_at", "user_id", "created_at"),
        CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'failed')", name="ck_jobs_state"
        ),
        CheckConstraint("done >= 0 AND total >= 0", name="ck_jobs_progress"),
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = _owner()
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, server_default="queued")
    done: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    total: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    summary: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[Any] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = _now()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
