"""The one composition root: ``build_services(settings=None, *, <typed overrides>) -> Services``.

Production defaults everywhere; tests pass overrides (a session factory joined to a
rolled-back transaction, a fixed clock, a fake LLM provider). Pages reach services only
through the cached result (``jarvis.ui.services.get_services``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine

from jarvis.clock import Clock, SystemClock
from jarvis.config import Settings, get_settings
from jarvis.db.engine import create_app_engine, create_owner_engine
from jarvis.db.repositories.health import ServerProbe
from jarvis.db.repositories.memory_indexes import MemoryIndexRepository
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.identity import Principal
from jarvis.llm.embedders import Embedder, EmbedderRegistry, default_embedder
from jarvis.llm.factory import ProviderFactory
from jarvis.security.crypto import EnvelopeCipher, KeyRing
from jarvis.security.passwords import PasswordHasher
from jarvis.security.tokens import AccessTokenCodec
from jarvis.services.admin import AdminService
from jarvis.services.auth import (
    AccountLockouts,
    AccountService,
    LoginPolicy,
    SessionService,
    SignInService,
)
from jarvis.services.chat.conversations import ConversationService
from jarvis.services.chat.engine import RunEngine
from jarvis.services.chat.ports import ProviderSource
from jarvis.services.chat.recovery import RUN_HEARTBEAT_SECONDS, Heartbeat, RunRecovery
from jarvis.services.chat.runs import RunService
from jarvis.services.chat.tool_calls import ToolCallExecutor
from jarvis.services.health import HealthService
from jarvis.services.key_rotation import KeyRotation
from jarvis.services.knowledge_graph import KnowledgeGraphService
from jarvis.services.memory import (
    EmbeddingMaintenance,
    MemoryIndexes,
    MemoryService,
    UserEmbedders,
)
from jarvis.services.permissions import PermissionsService
from jarvis.services.pricing import PricingService
from jarvis.services.pricing.cache import PriceCache
from jarvis.services.rate_limits import RateLimiter
from jarvis.services.secrets import SecretsService
from jarvis.services.usage import RunRecorder, UsageMaintenance, UsageService
from jarvis.tools.builtin import BuiltinToolServices, bind_builtin_handlers
from jarvis.tools.registry import ToolRegistry
from jarvis.tools.specs import builtin_registry
from jarvis.tracing import configure_tracing, instrument_engine


@dataclass
class Services:
    """Everything a page, the CLI or a test needs, wired once."""

    settings: Settings
    engine: Engine
    uow: UnitOfWorkFactory
    clock: Clock
    health: HealthService
    accounts: AccountService
    sign_in: SignInService
    sessions: SessionService
    admin: AdminService
    rate_limiter: RateLimiter
    secrets: SecretsService
    key_rotation: KeyRotation
    tools: ToolRegistry
    permissions: PermissionsService
    pricing: PricingService
    usage: UsageService
    run_recorder: RunRecorder
    embedder: Embedder
    memory: MemoryService
    knowledge_graph: KnowledgeGraphService
    providers: ProviderSource
    conversations: ConversationService
    runs: RunService


def ensure_database_url(settings: Settings) -> Settings:
    """With DATABASE_URL unset, start (or attach to) the embedded server in the data folder."""
    if settings.database_url:
        return settings
    from jarvis.db.embedded import EmbeddedPostgres

    url = EmbeddedPostgres(settings.data_dir).start()
    return settings.model_copy(update={"database_url": url, "embedded_database": True})


def build_services(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    uow: UnitOfWorkFactory | None = None,
    clock: Clock | None = None,
    hasher: PasswordHasher | None = None,
    cipher: EnvelopeCipher | None = None,
    tools: ToolRegistry | None = None,
    embedder: Embedder | None = None,
    providers: ProviderSource | None = None,
    login_policy: LoginPolicy | None = None,
    recover_runs: bool = True,
    run_heartbeat_seconds: float | None = None,
) -> Services:
    """Wire engine, repositories, providers and services with production defaults.

    Each keyword replaces one part (tests: a rolled-back ``uow``, a ``FixedClock``, a fast
    ``hasher``, ``providers`` that answer from a local wire server); an unknown keyword is a
    ``TypeError``, never silently ignored.

    ``run_heartbeat_seconds``: how often the heartbeat thread refreshes this process's runs;
    by default every ``RUN_HEARTBEAT_SECONDS``, or no thread at all when ``uow`` is given (a
    test's rolled-back connection must not be shared with a thread).
    """
    settings = ensure_database_url(settings or get_settings())
    engine = engine or create_app_engine(settings)
    shared_uow = uow is not None
    uow = uow or UnitOfWorkFactory(engine)
    clock = clock or SystemClock()
    hasher = hasher or PasswordHasher()

    health = HealthService(ServerProbe(engine), embedded=settings.uses_embedded_database)
    # Sign-in throttling, access / refresh tokens, user administration
    rate_limiter = RateLimiter(uow, clock)
    login_policy = login_policy or LoginPolicy()
    lockouts = AccountLockouts(clock, login_policy)
    sessions = SessionService(
        uow,
        clock,
        tokens=AccessTokenCodec(
            settings.jwt_secret or "",
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
            clock=clock,
            algorithm=settings.jwt_algorithm,
        ),
        refresh_idle_ttl_seconds=settings.refresh_idle_ttl_seconds,
        refresh_absolute_ttl_seconds=settings.refresh_absolute_ttl_seconds,
    )
    sign_in = SignInService(
        uow, hasher, clock, sessions, limiter=rate_limiter, policy=login_policy, lockouts=lockouts
    )
    accounts = AccountService(
        uow, hasher, clock, limiter=rate_limiter, policy=login_policy, lockouts=lockouts
    )
    admin = AdminService(uow, sessions, hasher, clock)
    # Prices, run costs and the usage rollups (the recorder closes each run's bookkeeping)
    price_cache = PriceCache()  # the recorder's; cleared when a price is added here
    pricing = PricingService(uow, clock, price_cache)
    run_recorder = RunRecorder(clock, price_cache)
    usage = UsageService(uow, clock, settings)
    cipher = cipher or EnvelopeCipher(KeyRing.from_settings(settings))
    secrets = SecretsService(uow, cipher, clock)
    key_rotation = KeyRotation(uow, cipher.keyring)
    tools = tools or builtin_registry()
    permissions = PermissionsService(uow, tools, clock)
    # The instance default embedder (JARVIS_EMBEDDER, wordllama: meaning, offline). A user who
    # was moved to another model (`jarvis embeddings reembed`) keeps it (OpenAI: their own
    # key); memories and graph entities follow the same model.
    embedder = embedder or default_embedder(settings.embedder)

    def _openai_key(principal: Principal) -> tuple[str, str | None]:
        revealed = secrets.reveal(principal, "openai")
        return revealed.value, revealed.base_url

    embedders = UserEmbedders(EmbedderRegistry(embedder), openai_key=_openai_key)
    memory = MemoryService(uow, embedders, clock)
    knowledge_graph = KnowledgeGraphService(uow, embedders, clock)
    # Chat providers (keys from the vault, per run) and tracing from settings.otel_exporter
    providers = providers or ProviderFactory(secrets)
    if configure_tracing(settings) is not None:
        instrument_engine(engine)
    # Chat: conversations, and agent runs driven by the engine; runs left `running` by a dead
    # process are failed at start-up
    bind_builtin_handlers(tools)
    recovery = RunRecovery(uow, clock)
    if run_heartbeat_seconds is None and not shared_uow:
        run_heartbeat_seconds = RUN_HEARTBEAT_SECONDS
    conversations = ConversationService(uow, clock, providers=providers, recovery=recovery)
    runs = RunService(
        uow,
        clock,
        settings,
        engine=RunEngine(
            uow,
            clock,
            settings,
            providers=providers,
            permissions=permissions,
            pricing=pricing,
            recorder=run_recorder,  # prices each finished run, keeps the usage rollups
            memory=memory,
            tool_calls=ToolCallExecutor(
                uow,
                clock,
                tools=tools,
                permissions=permissions,
                tool_services=BuiltinToolServices(clock, memory, knowledge_graph, usage, secrets),
            ),
            heartbeat=Heartbeat(recovery, run_heartbeat_seconds) if run_heartbeat_seconds else None,
        ),
        rate_limiter=rate_limiter,
        budgets=usage,
        recovery=recovery,
    )
    if recover_runs:
        runs.recover_stale_runs_safely()

    return Services(
        settings=settings,
        engine=engine,
        uow=uow,
        clock=clock,
        health=health,
        accounts=accounts,
        sign_in=sign_in,
        sessions=sessions,
        admin=admin,
        rate_limiter=rate_limiter,
        key_rotation=key_rotation,
        pricing=pricing,
        usage=usage,
        run_recorder=run_recorder,
        secrets=secrets,
        tools=tools,
        permissions=permissions,
        embedder=embedder,
        memory=memory,
        knowledge_graph=knowledge_graph,
        providers=providers,
        conversations=conversations,
        runs=runs,
    )


@contextmanager
def usage_maintenance(
    settings: Settings, *, clock: Clock | None = None, hasher: PasswordHasher | None = None
) -> Iterator[UsageMaintenance]:
    """The usage maintenance service on the OWNER connection (``jarvis usage ...``, ``jarvis
    demo seed``): an owner engine of its own, disposed of on exit. ``settings`` must name a
    running database (the CLI starts the embedded one first)."""
    engine = create_owner_engine(settings)
    try:
        yield UsageMaintenance(UnitOfWorkFactory(engine), clock or SystemClock(), hasher)
    finally:
        engine.dispose()


@dataclass
class MemoryMaintenance:
    """The owner's memory maintenance: catch-up after a change of the default embedder, and
    heavy users' own HNSW indexes."""

    embeddings: EmbeddingMaintenance
    indexes: MemoryIndexes


@contextmanager
def memory_maintenance(
    settings: Settings, *, embedder: Embedder | None = None
) -> Iterator[MemoryMaintenance]:
    """Memory maintenance on the OWNER connection (``jarvis db upgrade`` / ``jarvis up``
    catch-up, ``jarvis embeddings catch-up``, ``jarvis memory index``); ``settings`` must name
    a running database. The owner must see every user's rows (superuser or BYPASSRLS)."""
    engine = create_owner_engine(settings)
    try:
        yield MemoryMaintenance(
            EmbeddingMaintenance(
                UnitOfWorkFactory(engine), embedder or default_embedder(settings.embedder)
            ),
            MemoryIndexes(MemoryIndexRepository(engine)),
        )
    finally:
        engine.dispose()
