"""Usage upkeep on the OWNER connection: reprice, rebuild the rollups, seed prices, demo data.

``jarvis usage ...`` and ``jarvis demo seed`` use this service, built by
``jarvis.bootstrap.usage_maintenance(settings)`` on an owner engine. Repricing, rebuilding and
the demo seed write every user's rows, so the owner must see them all (a superuser or a
BYPASSRLS role; the embedded server's owner is one): under FORCE ROW LEVEL SECURITY any other
owner would see no runs and silently do nothing, so it is refused.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from jarvis.clock import Clock
from jarvis.db.uow import UnitOfWork, UnitOfWorkFactory
from jarvis.errors import ConfigError, ConflictError, ValidationError
from jarvis.security.passwords import PasswordHasher
from jarvis.services.pricing.service import load_price_file
from jarvis.services.usage.views import SeedResult
from jarvis.validation import clean_line

Progress = Callable[[str], None]
#: ``steps(done, total)``: how far a long maintenance task got (a job's progress bar).
Steps = Callable[[int, int], None]

#: The largest demo a command builds (a bigger one would run for hours or exhaust memory).
MAX_DEMO_USERS = 10_000
MAX_DEMO_DAYS = 3_650
MAX_DEMO_RUNS = 10_000_000
#: Runs repriced per statement, in whole UTC days (a day with more runs is one statement).
REPRICE_BATCH_RUNS = 2_000
_PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _no_steps(_done: int, _total: int) -> None:
    return None


def reprice(
    uow: UnitOfWork,
    since: datetime,
    *,
    progress: Steps | None = None,
    batch_runs: int = REPRICE_BATCH_RUNS,
) -> int:
    """Recompute the cost of every run started since ``since`` that this transaction sees
    (same price choice and rounding as live pricing), then rebuild the rollups from the day
    before on (local days start up to a day before the UTC day). Returns the runs repriced.

    The runs are repriced in slices of whole UTC days of about ``batch_runs`` runs, all in the
    caller's transaction (all or nothing, as one statement would be), telling ``progress``
    the runs done of the runs counted first. The last slice has no end: runs finished while
    this works are repriced too."""
    report = progress or _no_steps
    days = uow.prices.runs_to_reprice_by_day(since)
    total = sum(n for _day, n in days)
    report(0, total)
    count = pending = 0
    start = since
    for day, n in days[:-1]:
        pending += n
        if pending >= batch_runs:
            until = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
            count += uow.prices.reprice_runs(start, until)
            start, pending = until, 0
            report(min(count, total), total)
    count += uow.prices.reprice_runs(start)
    report(count, max(count, total))
    uow.usage.rebuild_rollups(from_day=since.date() - timedelta(days=1))
    return count


def check_demo_request(*, users: int, days: int, runs: int, prefix: str) -> str:
    """Refuse a demo seed that is too big or has a bad email prefix (before any work is
    queued); the prefix as it will be used."""
    if not (1 <= users <= MAX_DEMO_USERS and 1 <= days <= MAX_DEMO_DAYS):
        raise ValidationError(
            f"--users must be 1 to {MAX_DEMO_USERS:,} and --days 1 to {MAX_DEMO_DAYS:,}.",
            field="users",
        )
    if not 0 <= runs <= MAX_DEMO_RUNS:
        raise ValidationError(f"--runs must be 0 to {MAX_DEMO_RUNS:,}.", field="runs")
    prefix = clean_line(prefix, field="prefix", max_chars=40)
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValidationError(
            "--prefix may hold letters, digits, '.', '-' and '_' (it starts the emails).",
            field="prefix",
        )
    return prefix


def _require_all_rows(uow: UnitOfWork, action: str) -> None:
    if not uow.usage.sees_every_row():
        raise ConfigError(
            f"{action} needs a database owner that sees every user's runs (a superuser or a "
            "role with BYPASSRLS); this connection's role has neither. Point DATABASE_URL at "
            "such a role (or ALTER ROLE ... BYPASSRLS)."
        )


class UsageMaintenance:
    """The maintenance commands' service; ``uow`` must be on the owner connection."""

    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, hasher: PasswordHasher | None = None
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._hasher = hasher

    def reprice(
        self,
        since: datetime,
        *,
        progress: Steps | None = None,
        batch_runs: int = REPRICE_BATCH_RUNS,
    ) -> int:
        """Recompute run costs since ``since`` after a price change, and the rollups, in one
        transaction (``progress``: runs repriced of the runs to reprice)."""
        with self._uow() as uow:
            _require_all_rows(uow, "Repricing")
            count = reprice(uow, since, progress=progress, batch_runs=batch_runs)
            uow.commit()
        return count

    def rebuild_rollups(self, from_day: date | None = None) -> None:
        """Recompute the daily rollups from the runs (every local day, or from ``from_day``)."""
        with self._uow() as uow:
            _require_all_rows(uow, "Rebuilding the rollups")
            uow.usage.rebuild_rollups(from_day=from_day)
            uow.commit()

    def seed_prices(self) -> int:
        """Add the versions of ``jarvis/data/model_prices.csv`` the database lacks (existing
        versions are never overwritten). Returns how many were added."""
        with self._uow() as uow:
            added = uow.prices.seed(load_price_file())
            uow.commit()
        return added

    # -- demo data ------------------------------------------------------------------------

    def seed_demo(
        self,
        *,
        users: int = 20,
        days: int = 90,
        runs: int = 20_000,
        seed: int = 42,
        prefix: str = "demo",
        now: datetime | None = None,
        messages: bool = True,
        knowledge: bool = True,
        password_hash: str | None = None,
        progress: Progress | None = None,
        steps: Steps | None = None,
    ) -> SeedResult:
        """Create ``users`` demo users (``{prefix}-1@example.com`` ...) and about ``runs`` runs
        over the last ``days`` days, with messages, tool calls and consistent usage rollups,
        in one transaction (``COPY``); then the knowledge graph and memories if asked.
        ``progress`` hears what is being done, ``steps`` how far it got: one step per day of
        runs, then one per user given a knowledge graph."""
        from jarvis.demo.runs import DEMO_PASSWORD, DemoGenerator, login_email

        say = progress or (lambda _msg: None)
        step = steps or _no_steps
        prefix = check_demo_request(users=users, days=days, runs=runs, prefix=prefix)
        total_steps = days + (users if knowledge else 0)
        step(0, total_steps)
        t0 = time.perf_counter()
        result = SeedResult(login_email=login_email(prefix), password=DEMO_PASSWORD)
        pw_hash = password_hash or (self._hasher or PasswordHasher()).hash(DEMO_PASSWORD)
        with self._uow() as uow:
            if not uow.usage.sees_every_row():
                raise ConfigError(
                    "jarvis demo seed needs an owner connection that is a superuser or has "
                    "BYPASSRLS (COPY into row-level-secured tables); the embedded database's "
                    "owner is one."
                )
            data = uow.demo_data
            data.begin_bulk_load()
            if data.email_taken(result.login_email):
                raise ConflictError(
                    f"Demo users with the prefix '{prefix}' exist already "
                    f"({result.login_email}); use another --prefix."
                )
            result.admin_created = data.user_count() == 0
            gen = DemoGenerator(
                users=users,
                days=days,
                runs=runs,
                seed=seed,
                prefix=prefix,
                now=now or self._clock.now(),
                password_hash=pw_hash,
                first_install=result.admin_created,
                prices=uow.prices.list(),
                messages=messages,
            )
            demo_users = gen.users()
            result.users = data.copy_users(demo_users)
            result.user_ids = [u.id for u in demo_users]
            say(f"{result.users} users")
            for d, batch in enumerate(gen.days()):
                result.runs += data.copy_runs(batch.runs)
                result.messages += data.copy_messages(batch.messages)
                result.tool_calls += data.copy_tool_calls(batch.tool_calls)
                step(d + 1, total_steps)
                if d % 10 == 9 or d == days - 1:
                    say(f"day {d + 1}/{days}: {result.runs:,} runs")
            result.conversations = data.copy_conversations(gen.conversations())
            data.end_bulk_load()
            say("rollups")
            # The rollups, consistent with the runs, in the same transaction.
            uow.usage.rebuild_rollups(user_ids=result.user_ids)
            uow.commit()
        with self._uow() as uow:
            uow.demo_data.vacuum_analyze()
        if knowledge:
            say("knowledge graph and memories")
            result.knowledge = self.seed_knowledge(
                result.user_ids, gen.rng, progress=lambda i, _n: step(days + i, total_steps)
            )
        result.seconds = time.perf_counter() - t0
        return result

    def seed_knowledge(
        self, user_ids: list[uuid.UUID], rng: random.Random, *, progress: Steps | None = None
    ) -> dict[str, int]:
        """A demo knowledge graph and memories for each user (one transaction); the counts.
        ``progress`` hears the users done (of all of them)."""
        from jarvis.demo.knowledge import knowledge_for
        from jarvis.llm.embedders import WordLlamaEmbedder

        # The shipped default (demo users follow the instance default: a different
        # JARVIS_EMBEDDER is caught up by `jarvis up`).
        embedder = WordLlamaEmbedder()
        now = self._clock.now()
        totals = {"entities": 0, "relations": 0, "memories": 0}
        with self._uow() as uow:
            for i, user_id in enumerate(user_ids, start=1):
                rows = knowledge_for(user_id, rng, now, embedder)
                uow.demo_data.insert_knowledge(rows.entities, rows.relations, rows.memories)
                totals["entities"] += len(rows.entities)
                totals["relations"] += len(rows.relations)
                totals["memories"] += len(rows.memories)
                if progress is not None:
                    progress(i, len(user_ids))
            uow.commit()
        return totals
