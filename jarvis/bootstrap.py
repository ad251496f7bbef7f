"""The one composition root: ``build_services(settings=None, *, <typed overrides>) -> Services``.

Production defaults everywhere; tests pass overrides (a session factory joined to a
rolled-back transaction, a fixed clock, a fake LLM provider). Pages reach services only
through the cached result (``jarvis.ui.services.get_services``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine

from jarvis.clock import Clock, SystemClock
from jarvis.config import Settings, get_settings
from jarvis.db.engine import create_app_engine, create_owner_engine, libpq_url
from jarvis.db.migrate import head_revision
from jarvis.db.notify import Notifier
from jarvis.db.queue import JobQueue
from jarvis.db.repositories.health import ServerProbe
from jarvis.db.repositories.memory_indexes import MemoryIndexRepository
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.identity import Principal
from jarvis.llm.embedders import Embedder, EmbedderRegistry, default_embedder
from jarvis.llm.factory import ProviderFactory
from jarvis.llm.key_check import KeyChecker
from jarvis.security.crypto import EnvelopeCipher, KeyRing
from jarvis.security.outbound import OutboundPolicy
from jarvis.security.passwords import PasswordHasher
from jarvis.security.tokens import AccessTokenCodec
from jarvis.services.admin import AdminService
from jarvis.services.api_keys import ApiKeyService
from jarvis.services.auth import (
    AccountLockouts,
    AccountService,
    LoginPolicy,
    SessionService,
    SignInService,
)
from jarvis.services.chat.completions import CompletionService
from jarvis.services.chat.conversations import ConversationService
from jarvis.services.chat.engine import RunEngine
from jarvis.services.chat.log import Flusher
from jarvis.services.chat.ports import ProviderSource
from jarvis.services.chat.recovery import RunRecovery
from jarvis.services.chat.runs import RunService
from jarvis.services.chat.tool_calls import ToolCallExecutor
from jarvis.services.chat.trace import RunTraceService
from jarvis.services.chat.workers import BEAT_SECONDS, RunWorkers
from jarvis.services.health import HealthService
from jarvis.services.home import HomeService
from jarvis.services.jobs import (
    JobService,
    MaintenanceFactory,
    demo_seed_runner,
    graph_import_runner,
    reembed_runner,
    reprice_runner,
)
from jarvis.services.key_rotation import KeyRotation
from jarvis.services.knowledge_graph import KnowledgeGraphService
from jarvis.services.knowledge_graph.in_memory import GraphMemory
from jarvis.services.mcp import McpCatalog, McpService
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
from jarvis.tools.mcp_client import McpClient
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
    mcp: McpService
    pricing: PricingService
    usage: UsageService
    run_recorder: RunRecorder
    embedder: Embedder
    memory: MemoryService
    knowledge_graph: KnowledgeGraphService
    #: large users' graphs held in this process (the knowledge graph's capped neighbourhoods)
    graph_memory: GraphMemory
    providers: ProviderSource
    conversations: ConversationService
    runs: RunService
    traces: RunTraceService
    api_keys: ApiKeyService
    completions: CompletionService
    home: HomeService
    jobs: JobService
    notifier: Notifier | None = None
    queue: JobQueue | None = None

    def shutdown(self) -> None:
        """Stop this process's run workers (runs in progress end with a reason), its job
        worker and the event listener (the engine stays: it may be shared)."""
        self.runs.shutdown()
        if self.queue is not None:
            self.queue.stop()
        if self.notifier is not None:
            self.notifier.stop()


_provided: list[Services] = []


def provide_services(services: Services | None) -> None:
    """Make ``services`` this process's services (the ASGI lifespan: API and pages share one
    set of run workers and one engine); ``None`` forgets them."""
    _provided.clear()
    if services is not None:
        _provided.append(services)


def provided_services() -> Services | None:
    """The services the server built for this process, if it did."""
    return _provided[0] if _provided else None


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
    key_checker: KeyChecker | None = None,
    login_policy: LoginPolicy | None = None,
    recover_runs: bool = True,
    run_beat_seconds: float = BEAT_SECONDS,
    background: bool = True,
    job_worker: bool | None = None,
    maintenance: MaintenanceFactory | None = None,
) -> Services:
    """Wire engine, repositories, providers and services with production defaults.

    Each keyword replaces one part (tests: a rolled-back ``uow``, a ``FixedClock``, a fast
    ``hasher``, ``providers`` that answer from a local wire server); an unknown keyword is a
    ``TypeError``, never silently ignored.

    With a ``uow`` on one shared connection (a test's rolled-back transaction), runs execute
    inline and no background thread is started (the connection must not be shared with one).
    ``run_beat_seconds``: how often this process beats and sweeps dead processes' runs.
    ``background=False`` (commands, scripts preparing data): no listener, no supervisor; a
    run started there executes inline.
    ``job_worker``: run a background-job worker in this process (default: with
    ``background`` and ``JARVIS_JOB_WORKER=in-process``); jobs run inline on a shared
    connection.
    ``maintenance``: opens the usage maintenance service the re-pricing and demo seed jobs
    use (default: :func:`usage_maintenance` on the owner connection of ``settings``).
    """
    settings = ensure_database_url(settings or get_settings())
    engine = engine or create_app_engine(settings)
    uow = uow or UnitOfWorkFactory(engine)
    shared_uow = uow.shares_one_connection or not background
    clock = clock or SystemClock()
    hasher = hasher or PasswordHasher()

    health = HealthService(
        ServerProbe(engine), embedded=settings.uses_embedded_database, head=head_revision()
    )
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
        uow,
        hasher,
        clock,
        limiter=rate_limiter,
        policy=login_policy,
        lockouts=lockouts,
        sessions=sessions,
    )
    admin = AdminService(uow, sessions, hasher, clock)
    # Prices, run costs and the usage rollups (the recorder closes each run's bookkeeping)
    price_cache = PriceCache()  # the recorder's; cleared when a price is added here
    pricing = PricingService(uow, clock, price_cache)
    run_recorder = RunRecorder(clock, price_cache)
    usage = UsageService(uow, clock, settings)
    cipher = cipher or EnvelopeCipher(KeyRing.from_settings(settings))
    # Where users' base URLs may point (JARVIS_OUTBOUND_ALLOWLIST opens private networks)
    outbound = OutboundPolicy(tuple(settings.outbound_allowlist))
    secrets = SecretsService(uow, cipher, clock, outbound=outbound, key_checker=key_checker)
    key_rotation = KeyRotation(uow, cipher.keyring)
    tools = tools or builtin_registry()
    # Admin-registered MCP servers: their tools join the registry (`server.tool`), run as the
    # calling user with that user's own secrets
    mcp = McpService(
        uow,
        clock,
        client=McpClient(outbound),
        outbound=outbound,
        secrets=secrets,
        stale_seconds=settings.mcp_stale_seconds,
    )
    tools.attach(McpCatalog(mcp, ttl_seconds=settings.mcp_catalog_seconds))
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
    graph_memory = GraphMemory(
        uow,
        max_relations=settings.graph_memory_relations,
        min_relations=settings.graph_memory_min_relations,
    )
    knowledge_graph = KnowledgeGraphService(uow, embedders, clock, graph_memory)
    # Chat providers (keys from the vault, per run) and tracing from settings.otel_exporter
    providers = providers or ProviderFactory(secrets, outbound=outbound)
    if configure_tracing(settings) is not None:
        instrument_engine(engine)
    # Chat: conversations, and agent runs driven by the engine; runs left `running` by a dead
    # process are failed at start-up
    bind_builtin_handlers(tools)
    recovery = RunRecovery(uow, clock)
    conversations = ConversationService(uow, clock, providers=providers, recovery=recovery)
    # Runs execute on this process's workers and log every event; followers are woken by
    # LISTEN/NOTIFY. On a test's single rolled-back connection a run executes inline (before
    # start() returns) and followers poll.
    notifier = None if shared_uow else Notifier(libpq_url(settings.app_url()))
    workers = RunWorkers(
        uow,
        size=settings.run_workers,
        notifier=notifier,
        inline=shared_uow,
        beat_seconds=run_beat_seconds,
    )
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
            memory=memory,
            tool_calls=ToolCallExecutor(
                uow,
                clock,
                tools=tools,
                permissions=permissions,
                tool_services=BuiltinToolServices(clock, memory, knowledge_graph, usage, secrets),
            ),
        ),
        workers=workers,
        recovery=recovery,
        conversations=conversations,
        watcher=notifier,
        flusher=None if shared_uow else Flusher(),
    )
    if notifier is not None:
        notifier.start()
        workers.start()
    if recover_runs:
        runs.recover_stale_runs_safely()
    # Background jobs (imports, re-embedding, re-pricing, the demo seed) on procrastinate's
    # queue; the daily purge of ended sign-in state is its periodic task. Inline on a test's
    # shared connection.
    job_service: list[JobService] = []
    queue = (
        None
        if uow.shares_one_connection
        else JobQueue(
            settings.app_url(),
            run_job=lambda job_id, user_id: job_service[0].execute(job_id, user_id),
            purge=sign_in.purge_expired_state,
            concurrency=settings.job_concurrency,
        )
    )
    jobs = JobService(uow, clock, queue=queue, inline=uow.shares_one_connection)
    jobs.register("graph_import", graph_import_runner(knowledge_graph))
    jobs.register("reembed", reembed_runner(memory))
    # Re-pricing and the demo seed write every user's rows: the owner connection, per job.
    owner_settings = settings

    def _maintenance() -> AbstractContextManager[UsageMaintenance]:
        return usage_maintenance(owner_settings, clock=clock, hasher=hasher)

    jobs.register("reprice", reprice_runner(maintenance or _maintenance))
    jobs.register("demo_seed", demo_seed_runner(maintenance or _maintenance))
    job_service.append(jobs)
    if job_worker is None:
        job_worker = background and settings.job_worker == "in-process"
    if queue is not None and job_worker:
        queue.start()

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
        mcp=mcp,
        embedder=embedder,
        memory=memory,
        knowledge_graph=knowledge_graph,
        graph_memory=graph_memory,
        providers=providers,
        conversations=conversations,
        runs=runs,
        traces=RunTraceService(uow),
        api_keys=ApiKeyService(uow, clock),
        completions=CompletionService(runs=runs, conversations=conversations, providers=providers),
        home=HomeService(conversations, usage, clock),
        jobs=jobs,
        notifier=notifier,
        queue=queue,
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
