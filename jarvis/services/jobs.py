"""Background jobs: long work (a graph import, re-embedding a user's memories, re-pricing runs
after a price change, the demo seed) runs on a worker, never in the click, and reports progress
the page and the CLI follow.

A job is a row of ``jobs`` (the user's own under row-level security: kind, state, done /
total, summary or error) plus a queue entry that carries only its id and its user's id (the
queue is procrastinate's, :mod:`jarvis.db.queue`). :meth:`JobService.execute` is the worker's
entry: it acts as the job's user (the same principal handling every service uses), marks the
row running, calls the kind's runner with a ``progress(done, total)`` callback and records how
it ended: the runner's summary, or the error's message (a Jarvis error's own words; anything
else a generic sentence, with the traceback in the log only).

On a test's single rolled-back connection (and when a command asks to run ``here``) the job
executes in the caller before :meth:`JobService.enqueue` returns.

Re-pricing and the demo seed write every user's rows: their runners work through the usage
maintenance service on the owner connection (``jarvis.bootstrap.usage_maintenance``), while the
job row, like any other, belongs to the administrator who started it. Only administrators may
start them, and the runner checks the role again when the job runs.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal, Protocol, cast

from jarvis.clock import Clock
from jarvis.db.tables import Job
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import JarvisError, NotFoundError, PermissionDeniedError, ValidationError
from jarvis.identity import Principal, Role
from jarvis.services.knowledge_graph import KnowledgeGraphService
from jarvis.services.knowledge_graph.importer import MAX_IMPORT_BYTES
from jarvis.services.knowledge_graph.views import ImportFormat
from jarvis.services.memory import MemoryService
from jarvis.services.memory.service import MAX_BATCH
from jarvis.services.usage.maintenance import (
    REPRICE_BATCH_RUNS,
    UsageMaintenance,
    check_demo_request,
)
from jarvis.services.usage.views import SeedResult
from jarvis.validation import JsonValue

log = logging.getLogger(__name__)

JobKind = Literal["graph_import", "reembed", "reprice", "demo_seed"]
JobState = Literal["queued", "running", "succeeded", "failed"]
KINDS: tuple[JobKind, ...] = ("graph_import", "reembed", "reprice", "demo_seed")
UNEXPECTED = "The job failed unexpectedly. An administrator can find the details in the log."
#: Progress is written at most this often (the last step always is).
PROGRESS_EVERY_SECONDS = 0.25

Progress = Callable[[int, int], None]
#: The usage maintenance service on the owner connection, opened for one job and closed after.
MaintenanceFactory = Callable[[], AbstractContextManager[UsageMaintenance]]
#: The most runs one re-pricing statement may cover (a slice of whole days).
MAX_REPRICE_BATCH = 100_000


class JobDeferrer(Protocol):
    """The queue as the service sees it (:class:`jarvis.db.queue.JobQueue`)."""

    def defer(self, job_id: uuid.UUID, user_id: uuid.UUID) -> None: ...


@dataclass(frozen=True, slots=True)
class JobInput:
    """What a runner gets: who, the job's parameters, and its uploaded input (if any)."""

    principal: Principal
    params: Mapping[str, JsonValue]
    payload: bytes | None


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How a job ended: ``ok`` with a ``summary``, or not (the summary is then its error);
    ``result`` is shown next to it (an import's rejected rows)."""

    summary: str
    ok: bool = True
    result: JsonValue = None


Runner = Callable[[JobInput, Progress], JobOutcome]


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as its owner sees it."""

    id: uuid.UUID
    kind: str
    state: JobState
    done: int
    total: int
    summary: str | None
    error: str | None
    result: JsonValue
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    params: Mapping[str, JsonValue] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed")

    @property
    def fraction(self) -> float:
        """0..1 for a progress bar (1 when finished)."""
        if self.finished:
            return 1.0
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def progress_text(self) -> str:
        """``Queued``, ``1,200 of 3,311 (36 %)``, or the summary / error at the end."""
        if self.state == "queued":
            return "Queued: waiting for a worker…"
        if self.state == "running":
            if not self.total:
                return "Starting…"
            return f"{self.done:,} of {self.total:,} ({100 * self.fraction:.0f} %)"
        return (self.summary if self.state == "succeeded" else self.error) or self.state

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls(
            id=job.id,
            kind=job.kind,
            state=cast(JobState, job.state),
            done=job.done,
            total=job.total,
            summary=job.summary,
            error=job.error,
            result=job.result,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            params=dict(job.params or {}),
        )


class JobService:
    """Enqueue jobs, run them (the worker's entry) and read their progress."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        queue: JobDeferrer | None,
        inline: bool = False,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._queue = queue
        self._inline = inline or queue is None
        self._runners: dict[str, Runner] = {}

    def register(self, kind: JobKind, runner: Runner) -> None:
        """Make ``runner`` run the jobs of ``kind`` (bootstrap)."""
        self._runners[kind] = runner

    # -- enqueueing -------------------------------------------------------------------------

    def enqueue(
        self,
        principal: Principal,
        kind: JobKind,
        params: Mapping[str, JsonValue] | None = None,
        payload: bytes | None = None,
        *,
        here: bool = False,
        watch: Progress | None = None,
    ) -> JobView:
        """Record a job for ``principal`` and queue it (``here``: run it now, in this thread,
        telling ``watch`` its progress as well)."""
        if kind not in self._runners:
            raise ValidationError(f"Unknown kind of job: {kind}.", field="kind")
        with self._uow(principal) as w:
            job = w.jobs.add(
                Job(
                    user_id=principal.user_id,
                    kind=kind,
                    params=dict(params or {}),
                    payload=payload,
                    created_at=self._clock.now(),
                )
            )
            job_id = job.id
            w.commit()
        if here or self._inline or self._queue is None:
            self.execute(job_id, principal.user_id, watch=watch)
        else:
            try:
                self._queue.defer(job_id, principal.user_id)
            except JarvisError as exc:
                self._finish(principal, job_id, "failed", error=str(exc))
                raise
        return self.status(principal, job_id)

    def import_graph(
        self,
        principal: Principal,
        data: bytes,
        fmt: ImportFormat,
        *,
        here: bool = False,
        watch: Progress | None = None,
    ) -> JobView:
        """Queue an import of a CSV or JSON file into the user's knowledge graph."""
        if len(data) > MAX_IMPORT_BYTES:
            raise ValidationError(
                f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB.", field="file"
            )
        return self.enqueue(
            principal, "graph_import", {"format": fmt}, data, here=here, watch=watch
        )

    def reembed(
        self,
        principal: Principal,
        model: str,
        *,
        batch_size: int = 200,
        here: bool = False,
        watch: Progress | None = None,
    ) -> JobView:
        """Queue the move of the user's memories and graph entities to another embedder (a bad
        batch size is refused here, not by a job that fails later)."""
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValidationError(
                f"The batch size must be between 1 and {MAX_BATCH:,}.", field="batch_size"
            )
        return self.enqueue(
            principal,
            "reembed",
            {"model": model, "batch_size": batch_size},
            here=here,
            watch=watch,
        )

    def reprice(
        self,
        principal: Principal,
        since: date,
        *,
        batch_runs: int = REPRICE_BATCH_RUNS,
        here: bool = False,
        watch: Progress | None = None,
    ) -> JobView:
        """Queue the recomputation of every user's run costs (runs started on UTC day
        ``since`` or later) with the prices now recorded, and of the usage rollups
        (administrators only; a day in the future is refused here)."""
        require_admin(principal, "recompute costs")
        if since > self._clock.now().astimezone(UTC).date():
            raise ValidationError("The first day to recompute is in the future.", field="since")
        if not 1 <= batch_runs <= MAX_REPRICE_BATCH:
            raise ValidationError(
                f"The batch size must be between 1 and {MAX_REPRICE_BATCH:,} runs.",
                field="batch_runs",
            )
        return self.enqueue(
            principal,
            "reprice",
            {"since": since.isoformat(), "batch_runs": batch_runs},
            here=here,
            watch=watch,
        )

    def seed_demo(
        self,
        principal: Principal,
        *,
        users: int = 20,
        days: int = 90,
        runs: int = 20_000,
        seed: int = 42,
        prefix: str = "demo",
        messages: bool = True,
        knowledge: bool = True,
        here: bool = False,
        watch: Progress | None = None,
    ) -> JobView:
        """Queue the demo seed (:meth:`UsageMaintenance.seed_demo`): demo users with runs,
        messages, tool calls, rollups and, if asked, knowledge graphs and memories
        (administrators only; a seed too big or a bad prefix is refused here)."""
        require_admin(principal, "seed demo data")
        prefix = check_demo_request(users=users, days=days, runs=runs, prefix=prefix)
        return self.enqueue(
            principal,
            "demo_seed",
            {
                "users": users,
                "days": days,
                "runs": runs,
                "seed": seed,
                "prefix": prefix,
                "messages": messages,
                "knowledge": knowledge,
            },
            here=here,
            watch=watch,
        )

    # -- reading ----------------------------------------------------------------------------

    def status(self, principal: Principal, job_id: uuid.UUID) -> JobView:
        """One of the user's jobs (another user's is not found)."""
        with self._uow(principal) as w:
            job = w.jobs.get(job_id)
            if job is None or job.user_id != principal.user_id:
                raise NotFoundError("No such job.")
            return JobView.of(job)

    def recent(
        self, principal: Principal, kind: JobKind | None = None, limit: int = 10
    ) -> list[JobView]:
        """The user's latest jobs, newest first."""
        with self._uow(principal) as w:
            return [JobView.of(j) for j in w.jobs.recent(principal.user_id, kind, limit)]

    # -- running (the worker) ---------------------------------------------------------------

    def execute(
        self, job_id: uuid.UUID, user_id: uuid.UUID, *, watch: Progress | None = None
    ) -> None:
        """Run one queued job as its user; a job already started (or gone) is left alone.
        ``watch`` hears every progress step (a command running the job itself)."""
        principal = self._principal(user_id)
        if principal is None:
            return  # the account was deleted, and its jobs with it
        with self._uow(principal) as w:
            started = w.jobs.start(job_id, self._clock.now())
            job = w.jobs.get(job_id)
            w.commit()
            if not started or job is None:
                return
            kind, params, payload = job.kind, dict(job.params or {}), job.payload
        runner = self._runners.get(kind)
        try:
            if runner is None:
                raise ValidationError(f"Unknown kind of job: {kind}.")
            outcome = runner(
                JobInput(principal, params, payload), self._reporter(principal, job_id, watch)
            )
        except JarvisError as exc:
            self._finish(principal, job_id, "failed", error=str(exc))
        except Exception:
            log.exception("job %s (%s) failed", job_id, kind)
            self._finish(principal, job_id, "failed", error=UNEXPECTED)
        else:
            if outcome.ok:
                self._finish(
                    principal, job_id, "succeeded", summary=outcome.summary, result=outcome.result
                )
            else:
                self._finish(
                    principal, job_id, "failed", error=outcome.summary, result=outcome.result
                )

    def _principal(self, user_id: uuid.UUID) -> Principal | None:
        """The job's user as the services see them (read as themselves: RLS shows their row)."""
        with self._uow(Principal(user_id=user_id, email="")) as w:
            user = w.users.get(user_id)
            if user is None:
                return None
            return Principal(
                user_id=user.id,
                email=user.email,
                role=cast(Role, user.role),
                display_name=user.display_name or "",
            )

    def _reporter(
        self, principal: Principal, job_id: uuid.UUID, watch: Progress | None
    ) -> Progress:
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if watch is not None:
                watch(done, total)
            now = time.monotonic()
            if done < total and now - last[0] < PROGRESS_EVERY_SECONDS:
                return
            last[0] = now
            with self._uow(principal) as w:
                w.jobs.progress(job_id, max(0, done), max(0, total), self._clock.now())
                w.commit()

        return progress

    def _finish(
        self,
        principal: Principal,
        job_id: uuid.UUID,
        state: JobState,
        *,
        summary: str | None = None,
        error: str | None = None,
        result: JsonValue = None,
    ) -> None:
        with self._uow(principal) as w:
            w.jobs.finish(
                job_id,
                state=state,
                now=self._clock.now(),
                summary=summary,
                error=error,
                result=result,
            )
            w.commit()


# -- the kinds of job ---------------------------------------------------------------------------


def graph_import_runner(knowledge_graph: KnowledgeGraphService) -> Runner:
    """Import the uploaded file; rejected rows fail the job and come back as its result."""

    def run(job: JobInput, progress: Progress) -> JobOutcome:
        fmt: ImportFormat = "json" if job.params.get("format") == "json" else "csv"
        report = knowledge_graph.import_data(
            job.principal, job.payload or b"", fmt, progress=progress
        )
        rejected: list[JsonValue] = [
            {"row": r.row, "kind": r.kind, "reason": r.reason} for r in report.rejected
        ]
        return JobOutcome(report.summary, ok=report.imported, result=rejected or None)

    return run


def reembed_runner(memory: MemoryService) -> Runner:
    """Move the user's memories and graph entities to the chosen embedder."""

    def run(job: JobInput, progress: Progress) -> JobOutcome:
        model = str(job.params.get("model") or "")
        report = memory.reembed(
            job.principal, model, progress=progress, batch_size=_int(job.params, "batch_size", 200)
        )
        return JobOutcome(
            f"Re-embedded {report.moved:,} of {report.total:,} memories and graph entities "
            f"({report.memories:,} memories, {report.entities:,} entities) with "
            f"{report.model_name}."
        )

    return run


def require_admin(principal: Principal, what: str) -> None:
    """Refuse ``what`` to anyone but an administrator."""
    if not principal.is_admin:
        raise PermissionDeniedError(f"Only administrators can {what}.")


def _int(params: Mapping[str, JsonValue], name: str, default: int) -> int:
    value = params.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def reprice_summary(count: int, since: date) -> str:
    """What a re-pricing did, in one sentence (the job's summary and the command's output)."""
    runs = "run" if count == 1 else "runs"
    return f"Repriced {count:,} {runs} started since {since.isoformat()} (UTC); rollups rebuilt."


def reprice_runner(maintenance: MaintenanceFactory) -> Runner:
    """Recompute every user's run costs since the job's day, on the owner connection;
    progress is the runs repriced of the runs to reprice."""

    def run(job: JobInput, progress: Progress) -> JobOutcome:
        require_admin(job.principal, "recompute costs")  # still one when the job runs
        try:
            since = date.fromisoformat(str(job.params.get("since")))
        except ValueError as exc:
            raise ValidationError("The job names no valid first day.", field="since") from exc
        start = datetime.combine(since, datetime.min.time(), tzinfo=UTC)
        with maintenance() as upkeep:
            count = upkeep.reprice(
                start,
                progress=progress,
                batch_runs=_int(job.params, "batch_runs", REPRICE_BATCH_RUNS),
            )
        return JobOutcome(
            reprice_summary(count, since), result={"runs": count, "since": since.isoformat()}
        )

    return run


def demo_summary(result: SeedResult) -> str:
    """What the demo seed wrote, in one sentence (no password: the command prints the login)."""
    line = (
        f"Seeded {result.users:,} demo users with {result.runs:,} runs "
        f"({result.conversations:,} conversations, {result.messages:,} messages, "
        f"{result.tool_calls:,} tool calls) in {result.seconds:.1f} s."
    )
    if result.knowledge:
        k = result.knowledge
        line += (
            f" Knowledge graphs and memories: {k.get('entities', 0):,} entities, "
            f"{k.get('relations', 0):,} relations, {k.get('memories', 0):,} memories."
        )
    return line


def demo_result(result: SeedResult) -> dict[str, JsonValue]:
    """The demo seed's counts and login email (never its password) as a job's result."""
    knowledge: JsonValue = (
        {name: count for name, count in result.knowledge.items()} if result.knowledge else None
    )
    return {
        "users": result.users,
        "runs": result.runs,
        "conversations": result.conversations,
        "messages": result.messages,
        "tool_calls": result.tool_calls,
        "seconds": round(result.seconds, 3),
        "login_email": result.login_email,
        "admin_created": result.admin_created,
        "knowledge": knowledge,
    }


def demo_seed_runner(maintenance: MaintenanceFactory) -> Runner:
    """Seed the demo users and their data on the owner connection; progress is one step per
    day of runs, then one per user given a knowledge graph."""

    def run(job: JobInput, progress: Progress) -> JobOutcome:
        require_admin(job.principal, "seed demo data")
        p = job.params
        with maintenance() as upkeep:
            result = upkeep.seed_demo(
                users=_int(p, "users", 20),
                days=_int(p, "days", 90),
                runs=_int(p, "runs", 20_000),
                seed=_int(p, "seed", 42),
                prefix=str(p.get("prefix") or "demo"),
                messages=p.get("messages") is not False,
                knowledge=p.get("knowledge") is not False,
                steps=progress,
            )
        return JobOutcome(demo_summary(result), result=demo_result(result))

    return run
