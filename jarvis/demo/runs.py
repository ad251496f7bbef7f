"""Generate demo users and 90 days of agent runs with ``COPY`` (a million runs in minutes).

Everything is written in one transaction on the *owner* connection with psycopg's ``COPY``:
users, conversations, runs (priced with the same rule as live runs), messages and tool calls.
Foreign-key triggers are skipped (``session_replication_role = replica``: the generator writes
consistent rows) and the rollups are then rebuilt with one ``INSERT ... SELECT ... GROUP BY``
per table. ``COPY FROM`` is refused on row-level-secured tables for a role subject to RLS, so the
owner must be a superuser or have ``BYPASSRLS`` (the embedded server's owner is a superuser).
"""

from __future__ import annotations

import logging
import random
import time as _time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from psycopg.types.json import Jsonb
from sqlalchemy import Engine, text

from jarvis.db.repositories.usage import rebuild_usage_rollup
from jarvis.errors import ConfigError, ConflictError
from jarvis.security.passwords import PasswordHasher
from jarvis.services.pricing import COST_QUANTUM, MTOK, PriceView, select_price

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo-password"  # noqa: S105 - printed to the operator on purpose

TIMEZONES = (
    ("UTC", 2),
    ("Europe/London", 3),
    ("Europe/Berlin", 4),
    ("Europe/Paris", 2),
    ("America/New_York", 4),
    ("America/Los_Angeles", 3),
    ("America/Sao_Paulo", 1),
    ("Asia/Tokyo", 2),
    ("Asia/Kolkata", 2),
    ("Australia/Sydney", 1),
)

# provider, model, popularity, cache behaviour ("openai": cached input, "anthropic": read+write)
MODELS: tuple[tuple[str, str, float, str], ...] = (
    ("openai", "gpt-4o-mini", 30, "openai"),
    ("openai", "gpt-4.1-mini", 14, "openai"),
    ("openai", "gpt-4o", 12, "openai"),
    ("openai", "gpt-4.1", 8, "openai"),
    ("openai", "o4-mini", 6, "openai"),
    ("openai", "o3", 3, "openai"),
    ("anthropic", "claude-sonnet-4-20250514", 14, "anthropic"),
    ("anthropic", "claude-3-5-haiku-20241022", 8, "anthropic"),
    ("anthropic", "claude-opus-4-20250514", 2, "anthropic"),
    ("offline", "offline-deterministic", 6, "none"),
    ("openai_compatible", "llama3.1:8b", 3, "none"),  # no price: shows as "unpriced"
)

# tool id, popularity, median latency ms
TOOLS: tuple[tuple[str, float, float], ...] = (
    ("memory_search", 30, 45),
    ("memory_store", 12, 60),
    ("kg_lookup", 14, 35),
    ("kg_add_fact", 6, 50),
    ("current_time", 8, 2),
    ("calculator", 12, 3),
    ("usage_report", 3, 25),
    ("web_search", 15, 900),
)

FIRST_NAMES = (
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Katherine",
    "John",
    "Hedy",
    "Guido",
    "Sophie",
    "Yukihiro",
    "Anita",
    "Bjarne",
)
LAST_NAMES = (
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Johnson",
    "McCarthy",
    "Lamarr",
    "van Rossum",
    "Wilson",
    "Matsumoto",
    "Borg",
    "Stroustrup",
)
TOPICS = (
    "the quarterly report",
    "our onboarding checklist",
    "a SQL query that is slow",
    "the trip to Lisbon",
    "a birthday present for my sister",
    "the team offsite agenda",
    "the invoice from Acme",
    "a Python script that parses CSV",
    "my reading list",
    "the product launch plan",
    "a recipe for dinner",
    "the budget for next month",
    "the customer call notes",
    "a cover letter",
    "the migration to PostgreSQL 18",
)
ASKS = (
    "Can you summarise {t}?",
    "What do you remember about {t}?",
    "Help me plan {t}.",
    "Draft an email about {t}.",
    "What are the open questions on {t}?",
    "Remember that {t} is due on Friday.",
    "How much did I spend on {t}?",
    "Compare two options for {t}.",
    "Explain {t} in three bullet points.",
)
ANSWERS = (
    "Here is a short summary of {t}: the main points are scope, timeline and owners.",
    "I found two notes about {t}. The latest says it is on track.",
    "A plan for {t}: 1) collect inputs, 2) draft, 3) review on Thursday.",
    "Done - I stored that about {t}.",
    "Draft: 'Hi all, a quick update on {t} ...'",
    "Three points on {t}: keep it simple, measure first, write it down.",
)


@dataclass
class SeedResult:
    users: int = 0
    conversations: int = 0
    runs: int = 0
    messages: int = 0
    tool_calls: int = 0
    seconds: float = 0.0
    login_email: str = ""
    password: str = DEMO_PASSWORD
    admin_created: bool = False
    user_ids: list[uuid.UUID] = field(default_factory=list)
    knowledge: dict[str, Any] | None = None


@dataclass
class _User:
    id: uuid.UUID
    tz: ZoneInfo
    models: list[int]
    model_weights: list[float]
    tool_rate: float
    conversation: uuid.UUID | None = None
    conv_left: int = 0


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _check_owner(conn: Any) -> None:
    row = conn.execute(
        "select rolsuper, rolbypassrls from pg_roles where rolname = current_user"
    ).fetchone()
    if not row or not (row[0] or row[1]):
        raise ConfigError(
            "jarvis demo seed needs an owner connection that is a superuser or has BYPASSRLS "
            "(COPY into row-level-secured tables); the embedded database's owner is one."
        )


def seed_demo(
    engine: Engine,
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
    progress: Callable[[str], None] | None = None,
) -> SeedResult:
    """Create ``users`` demo users (``{prefix}-1@example.com`` ...) and about ``runs`` runs over
    the last ``days`` days, with messages, tool calls and consistent usage rollups."""
    say = progress or (lambda _msg: None)
    if users < 1 or days < 1 or runs < 0:
        raise ConfigError("users and days must be at least 1, runs at least 0")
    t0 = _time.perf_counter()
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    result = SeedResult(login_email=f"{prefix}-1@example.com")
    pw_hash = password_hash or PasswordHasher().hash(DEMO_PASSWORD)

    with engine.connect() as sa_conn, sa_conn.begin():
        # COPY needs the driver connection; it shares the SQLAlchemy transaction.
        conn: Any = sa_conn.connection.driver_connection
        _check_owner(conn)
        conn.execute("set local session_replication_role = replica")
        conn.execute("set local synchronous_commit = off")
        exists = conn.execute(
            "select 1 from users where lower(email) = lower(%s)", (result.login_email,)
        ).fetchone()
        if exists:
            raise ConflictError(
                f"Demo users with the prefix '{prefix}' exist already "
                f"({result.login_email}); use another --prefix."
            )
        first_install = conn.execute("select count(*) from users").fetchone()[0] == 0
        prices = _load_prices(conn)

        demo_users = _write_users(conn, rng, users, prefix, pw_hash, first_install, now, days)
        result.users = len(demo_users)
        result.admin_created = first_install
        result.user_ids = [u.id for u in demo_users]
        say(f"{len(demo_users)} users")

        counts = _allocate(nrng, len(demo_users), days, runs)
        conversations: dict[uuid.UUID, list[Any]] = {}
        start_day = (now - timedelta(days=days - 1)).date()
        for d in range(days):
            day = start_day + timedelta(days=d)
            n_runs, n_msgs, n_tools = _write_day(
                conn,
                rng,
                nrng,
                demo_users,
                counts[:, d],
                day,
                now,
                prices,
                conversations,
                messages,
            )
            result.runs += n_runs
            result.messages += n_msgs
            result.tool_calls += n_tools
            if d % 10 == 9 or d == days - 1:
                say(f"day {d + 1}/{days}: {result.runs:,} runs")
        with conn.cursor().copy(
            "COPY conversations (id, user_id, title, provider, model, created_at, updated_at)"
            " FROM STDIN"
        ) as copy:
            for cid, (uid, title, provider, model, first, last) in conversations.items():
                copy.write_row((cid, uid, title, provider, model, first, last))
        result.conversations = len(conversations)
        conn.execute("set local session_replication_role = origin")
        say("rollups")
        # The rollups, consistent with the runs, in the same transaction.
        rebuild_usage_rollup(sa_conn, user_ids=result.user_ids)
    with engine.connect() as sa_conn:
        sa_conn = sa_conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in (
            "users",
            "conversations",
            "agent_runs",
            "messages",
            "tool_calls",
            "usage_daily",
            "tool_usage_daily",
        ):
            sa_conn.execute(text(f"VACUUM ANALYZE {table}"))

    if knowledge:
        result.knowledge = _seed_knowledge(engine, result.user_ids, rng, say)
    result.seconds = _time.perf_counter() - t0
    return result


def _seed_knowledge(
    engine: Engine, user_ids: list[uuid.UUID], rng: random.Random, say: Callable[[str], None]
) -> dict[str, Any] | None:
    from jarvis.demo.knowledge import seed_knowledge

    say("knowledge graph and memories")
    out: dict[str, Any] = seed_knowledge(engine, user_ids, rng)
    return out


def _load_prices(conn: Any) -> list[PriceView]:
    rows = conn.execute(
        "select id, provider, model, input_per_mtok, output_per_mtok, cache_read_per_mtok,"
        " cache_write_per_mtok, effective_from from model_prices"
    ).fetchall()
    return [PriceView(*r) for r in rows]


def _write_users(
    conn: Any,
    rng: random.Random,
    n: int,
    prefix: str,
    pw_hash: str,
    first_install: bool,
    now: datetime,
    days: int,
) -> list[_User]:
    zones = [z for z, _ in TIMEZONES]
    zone_w = [w for _, w in TIMEZONES]
    model_w = [m[2] for m in MODELS]
    out: list[_User] = []
    with conn.cursor().copy(
        "COPY users (id, email, display_name, password_hash, role, is_active, timezone,"
        " monthly_budget_usd, created_at, last_login_at) FROM STDIN"
    ) as copy:
        for i in range(n):
            uid = _uuid(rng)
            tz_name = rng.choices(zones, zone_w)[0]
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            k = rng.choice((1, 2, 2, 3, 3, 4))
            models = sorted(set(rng.choices(range(len(MODELS)), model_w, k=k)))
            weights = [rng.uniform(0.5, 3.0) for _ in models]
            budget = rng.choice((None,) * 8 + (Decimal("50.00"), Decimal("100.00")))
            role = "admin" if (i == 0 and first_install) else "user"
            created = now - timedelta(days=days + rng.randint(1, 60))
            copy.write_row(
                (
                    uid,
                    f"{prefix}-{i + 1}@example.com",
                    f"{first} {last}",
                    pw_hash,
                    role,
                    True,
                    tz_name,
                    budget,
                    created,
                    now - timedelta(hours=rng.randint(1, 72)),
                )
            )
            out.append(_User(uid, ZoneInfo(tz_name), models, weights, rng.uniform(0.2, 0.8)))
    return out


def _allocate(nrng: np.random.Generator, n_users: int, days: int, runs: int) -> Any:
    """Runs per (user, day): heavy-tailed users (Zipf-like, the top user ~10 %), weekdays busier,
    usage growing over the period."""
    user_w = 1.0 / np.arange(1, n_users + 1) ** 0.9
    user_w /= user_w.sum()
    day_idx = np.arange(days)
    growth = 0.6 + 0.8 * day_idx / max(days - 1, 1)
    weekday = np.where(((day_idx + 3) % 7) >= 5, 0.45, 1.0)
    day_w = growth * weekday
    day_w /= day_w.sum()
    p = np.outer(user_w, day_w).ravel()
    return nrng.multinomial(runs, p / p.sum()).reshape(n_users, days)


def _write_day(
    conn: Any,
    rng: random.Random,
    nrng: np.random.Generator,
    users: list[_User],
    counts: Any,
    day: date,
    now: datetime,
    prices: list[Any],
    conversations: dict[uuid.UUID, list[Any]],
    with_messages: bool,
) -> tuple[int, int, int]:
    total = int(counts.sum())
    if total == 0:
        return 0, 0, 0
    # Local time of day: a working-hours bump plus some evening use.
    hours = np.where(
        nrng.random(total) < 0.8, nrng.normal(13.5, 2.8, total), nrng.normal(20.5, 1.5, total)
    ).clip(0, 23.99)
    inp = nrng.lognormal(7.0, 0.9, total).astype(int) + 20
    out_t = nrng.lognormal(5.6, 0.8, total).astype(int) + 5
    cache_frac = nrng.random(total)
    status_r = nrng.random(total)
    durations = nrng.lognormal(1.2, 0.7, total) + 0.3

    price_cache: dict[tuple[str, str, date], Any] = {}
    run_rows: list[tuple[Any, ...]] = []
    msg_rows: list[tuple[Any, ...]] = []
    tool_rows: list[tuple[Any, ...]] = []
    tool_ids = [t[0] for t in TOOLS]
    tool_w = [t[1] for t in TOOLS]
    tool_lat = {t[0]: t[2] for t in TOOLS}
    i = 0
    for u_idx, n in enumerate(counts):
        n = int(n)
        if not n:
            continue
        user = users[u_idx]
        midnight = datetime(day.year, day.month, day.day, tzinfo=user.tz)
        for _ in range(n):
            started = (midnight + timedelta(hours=float(hours[i]))).astimezone(UTC)
            if started > now:
                started = now - timedelta(minutes=rng.randint(1, 600))
            m_idx = rng.choices(user.models, user.model_weights)[0]
            provider, model, _, cache_kind = MODELS[m_idx]
            input_tokens, output_tokens = int(inp[i]), int(out_t[i])
            cache_read = cache_write = 0
            if cache_kind == "openai" and cache_frac[i] < 0.35:
                cache_read = int(input_tokens * 0.6)
                input_tokens -= cache_read
            elif cache_kind == "anthropic" and cache_frac[i] < 0.5:
                cache_read = int(input_tokens * 0.7)
                input_tokens -= cache_read
                if cache_frac[i] < 0.1:
                    cache_write = int(input_tokens * 0.5)
                    input_tokens -= cache_write
            sr = status_r[i]
            status = "completed" if sr < 0.955 else ("failed" if sr < 0.99 else "cancelled")
            if status == "failed":
                output_tokens = output_tokens // 4
            finished = started + timedelta(seconds=float(durations[i]))
            if finished > now:
                finished = now
            key = (provider, model, finished.date())
            if key not in price_cache:
                price_cache[key] = select_price(prices, provider, model, finished.date())
            price = price_cache[key]
            if price is None:
                cost, version, unpriced = None, None, True
            else:
                cost = (
                    (
                        input_tokens * price.input_per_mtok
                        + output_tokens * price.output_per_mtok
                        + cache_read * price.cache_read_per_mtok
                        + cache_write * price.cache_write_per_mtok
                    )
                    / MTOK
                ).quantize(COST_QUANTUM)
                version, unpriced = price.id, False
            if user.conv_left <= 0 or user.conversation is None:
                user.conversation = _uuid(rng)
                user.conv_left = rng.randint(1, 12)
                topic = rng.choice(TOPICS)
                conversations[user.conversation] = [
                    user.id,
                    topic[0].upper() + topic[1:],
                    provider,
                    model,
                    started,
                    finished,
                ]
            else:
                conversations[user.conversation][5] = finished
            user.conv_left -= 1
            run_id = _uuid(rng)
            total_tokens = input_tokens + output_tokens + cache_read + cache_write
            run_rows.append(
                (
                    run_id,
                    user.id,
                    user.conversation,
                    provider,
                    model,
                    status,
                    input_tokens,
                    output_tokens,
                    cache_read,
                    cache_write,
                    total_tokens,
                    cost,
                    version,
                    unpriced,
                    "The provider did not answer in time." if status == "failed" else None,
                    started,
                    finished,
                )
            )
            topic = rng.choice(TOPICS)
            if with_messages:
                msg_rows.append(
                    (
                        _uuid(rng),
                        run_id,
                        user.conversation,
                        user.id,
                        "user",
                        rng.choice(ASKS).format(t=topic),
                        started,
                    )
                )
                if status == "completed":
                    msg_rows.append(
                        (
                            _uuid(rng),
                            run_id,
                            user.conversation,
                            user.id,
                            "assistant",
                            rng.choice(ANSWERS).format(t=topic),
                            finished,
                        )
                    )
            if provider != "openai_compatible" and rng.random() < user.tool_rate:
                for k in range(rng.choice((1, 1, 1, 2, 2, 3))):
                    tool = rng.choices(tool_ids, tool_w)[0]
                    tr = rng.random()
                    t_status = "ok" if tr < 0.93 else ("error" if tr < 0.98 else "denied")
                    latency = (
                        None
                        if t_status == "denied"
                        else max(1, int(rng.lognormvariate(0, 0.6) * tool_lat[tool]))
                    )
                    tool_rows.append(
                        (
                            _uuid(rng),
                            run_id,
                            user.id,
                            tool,
                            Jsonb({"query": topic}),
                            Jsonb({"ok": t_status == "ok"}),
                            t_status,
                            latency,
                            started + timedelta(milliseconds=200 * (k + 1)),
                        )
                    )
            i += 1
    run_rows.sort(key=lambda r: r[15])
    cur = conn.cursor()
    with cur.copy(
        "COPY agent_runs (id, user_id, conversation_id, provider, model, status, input_tokens,"
        " output_tokens, cache_read_tokens, cache_write_tokens, total_tokens, total_cost,"
        " price_version, unpriced, error, started_at, finished_at) FROM STDIN"
    ) as copy:
        for row in run_rows:
            copy.write_row(row)
    if msg_rows:
        with cur.copy(
            "COPY messages (id, run_id, conversation_id, user_id, role, content, created_at)"
            " FROM STDIN"
        ) as copy:
            for row in msg_rows:
                copy.write_row(row)
    if tool_rows:
        with cur.copy(
            "COPY tool_calls (id, run_id, user_id, tool_id, arguments, result, status,"
            " latency_ms, created_at) FROM STDIN"
        ) as copy:
            for row in tool_rows:
                copy.write_row(row)
    return len(run_rows), len(msg_rows), len(tool_rows)
