"""Generate demo users and 90 days of agent runs (a million runs in minutes), as rows.

Pure data generation: realistic users (time zones, budgets, favourite models), runs per user
and day (heavy-tailed users, busier weekdays, growing usage), each priced with the same rule as
live runs, messages and tool calls. Nothing here touches the database: the usage maintenance
service (``UsageMaintenance.seed_demo``, ``jarvis demo seed``) writes the rows with ``COPY``
(``jarvis.db.repositories.demo``) and rebuilds the rollups.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from jarvis.db.repositories.demo import (
    DemoConversation,
    DemoMessage,
    DemoRun,
    DemoToolCall,
    DemoUser,
)
from jarvis.llm.base import Usage
from jarvis.services.pricing.rules import PriceLike, compute_cost, select_price

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
class _User:
    id: uuid.UUID
    tz: ZoneInfo
    models: list[int]
    model_weights: list[float]
    tool_rate: float
    conversation: uuid.UUID | None = None
    conv_left: int = 0


@dataclass
class _Conversation:
    user_id: uuid.UUID
    title: str
    provider: str
    model: str
    first: datetime
    last: datetime


@dataclass
class DayRows:
    """The rows of one day (runs sorted by start)."""

    runs: list[DemoRun] = field(default_factory=list)
    messages: list[DemoMessage] = field(default_factory=list)
    tool_calls: list[DemoToolCall] = field(default_factory=list)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def login_email(prefix: str) -> str:
    """The first demo user's email (an admin on a first install)."""
    return f"{prefix}-1@example.com"


class DemoGenerator:
    """Demo rows for ``users`` users over the ``days`` days up to ``now``, about ``runs`` runs,
    reproducible from ``seed``. Call :meth:`users`, then :meth:`days` (one batch per day), then
    :meth:`conversations`; afterwards :attr:`rng` continues the same random sequence."""

    def __init__(
        self,
        *,
        users: int,
        days: int,
        runs: int,
        seed: int,
        prefix: str,
        now: datetime,
        password_hash: str,
        first_install: bool,
        prices: Sequence[PriceLike],
        messages: bool = True,
    ) -> None:
        self.rng = random.Random(seed)
        self._nrng = np.random.default_rng(seed)
        self._n_users, self._days, self._runs = users, days, runs
        self._prefix, self._now = prefix, now.astimezone(UTC)
        self._password_hash = password_hash
        self._first_install = first_install
        self._prices = list(prices)
        self._messages = messages
        self._users: list[_User] = []
        self._conversations: dict[uuid.UUID, _Conversation] = {}

    def users(self) -> list[DemoUser]:
        """The demo users (the first is an admin on a first install)."""
        rng, now = self.rng, self._now
        zones = [z for z, _ in TIMEZONES]
        zone_w = [w for _, w in TIMEZONES]
        model_w = [m[2] for m in MODELS]
        rows: list[DemoUser] = []
        for i in range(self._n_users):
            uid = _uuid(rng)
            tz_name = rng.choices(zones, zone_w)[0]
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            k = rng.choice((1, 2, 2, 3, 3, 4))
            models = sorted(set(rng.choices(range(len(MODELS)), model_w, k=k)))
            weights = [rng.uniform(0.5, 3.0) for _ in models]
            budget = rng.choice((None,) * 8 + (Decimal("50.00"), Decimal("100.00")))
            role = "admin" if (i == 0 and self._first_install) else "user"
            created = now - timedelta(days=self._days + rng.randint(1, 60))
            rows.append(
                DemoUser(
                    uid,
                    f"{self._prefix}-{i + 1}@example.com",
                    f"{first} {last}",
                    self._password_hash,
                    role,
                    True,
                    tz_name,
                    budget,
                    created,
                    now - timedelta(hours=rng.randint(1, 72)),
                )
            )
            self._users.append(
                _User(uid, ZoneInfo(tz_name), models, weights, rng.uniform(0.2, 0.8))
            )
        return rows

    def days(self) -> Iterator[DayRows]:
        """One batch of rows per day, oldest first."""
        counts = _allocate(self._nrng, len(self._users), self._days, self._runs)
        start_day = (self._now - timedelta(days=self._days - 1)).date()
        for d in range(self._days):
            yield self._day(counts[:, d], start_day + timedelta(days=d))

    def conversations(self) -> list[DemoConversation]:
        """Every conversation the runs used (first and last run times)."""
        return [
            DemoConversation(cid, c.user_id, c.title, c.provider, c.model, c.first, c.last)
            for cid, c in self._conversations.items()
        ]

    def _day(self, counts: npt.NDArray[np.int64], day: date) -> DayRows:
        rng, nrng, now = self.rng, self._nrng, self._now
        out = DayRows()
        total = int(counts.sum())
        if total == 0:
            return out
        # Local time of day: a working-hours bump plus some evening use.
        hours = np.where(
            nrng.random(total) < 0.8, nrng.normal(13.5, 2.8, total), nrng.normal(20.5, 1.5, total)
        ).clip(0, 23.99)
        inp = nrng.lognormal(7.0, 0.9, total).astype(int) + 20
        out_t = nrng.lognormal(5.6, 0.8, total).astype(int) + 5
        cache_frac = nrng.random(total)
        status_r = nrng.random(total)
        durations = nrng.lognormal(1.2, 0.7, total) + 0.3

        price_cache: dict[tuple[str, str, date], PriceLike | None] = {}
        tool_ids = [t[0] for t in TOOLS]
        tool_w = [t[1] for t in TOOLS]
        tool_lat = {t[0]: t[2] for t in TOOLS}
        i = 0
        for u_idx, n in enumerate(counts):
            user = self._users[u_idx]
            midnight = datetime(day.year, day.month, day.day, tzinfo=user.tz)
            for _ in range(int(n)):
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
                finished = min(started + timedelta(seconds=float(durations[i])), now)
                key = (provider, model, finished.date())
                if key not in price_cache:
                    price_cache[key] = select_price(self._prices, provider, model, key[2])
                price = price_cache[key]
                usage = Usage(input_tokens, output_tokens, cache_read, cache_write)
                cost = None if price is None else compute_cost(price, usage)
                conversation = self._conversation(user, provider, model, started, finished)
                run_id = _uuid(rng)
                out.runs.append(
                    DemoRun(
                        run_id,
                        user.id,
                        conversation,
                        provider,
                        model,
                        status,
                        input_tokens,
                        output_tokens,
                        cache_read,
                        cache_write,
                        usage.total_tokens,
                        cost,
                        None if price is None else int(price.id),
                        price is None,
                        "The provider did not answer in time." if status == "failed" else None,
                        started,
                        finished,
                    )
                )
                topic = rng.choice(TOPICS)
                if self._messages:
                    out.messages.extend(
                        self._messages_of(
                            run_id, user, conversation, topic, status, started, finished
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
                        out.tool_calls.append(
                            DemoToolCall(
                                _uuid(rng),
                                run_id,
                                user.id,
                                tool,
                                {"query": topic},
                                {"ok": t_status == "ok"},
                                t_status,
                                latency,
                                started + timedelta(milliseconds=200 * (k + 1)),
                            )
                        )
                i += 1
        out.runs.sort(key=lambda r: r.started_at)
        return out

    def _conversation(
        self, user: _User, provider: str, model: str, started: datetime, finished: datetime
    ) -> uuid.UUID:
        """The user's current conversation (a new one every 1-12 runs), updated to this run."""
        if user.conv_left <= 0 or user.conversation is None:
            user.conversation = _uuid(self.rng)
            user.conv_left = self.rng.randint(1, 12)
            topic = self.rng.choice(TOPICS)
            self._conversations[user.conversation] = _Conversation(
                user.id, topic[0].upper() + topic[1:], provider, model, started, finished
            )
        else:
            self._conversations[user.conversation].last = finished
        user.conv_left -= 1
        return user.conversation

    def _messages_of(
        self,
        run_id: uuid.UUID,
        user: _User,
        conversation: uuid.UUID,
        topic: str,
        status: str,
        started: datetime,
        finished: datetime,
    ) -> list[DemoMessage]:
        rng = self.rng
        # (The id is drawn before the text: the same random sequence as ever for a seed.)
        ask_id = _uuid(rng)
        ask = rng.choice(ASKS).format(t=topic)
        rows = [DemoMessage(ask_id, run_id, conversation, user.id, "user", ask, started)]
        if status == "completed":
            answer_id = _uuid(rng)
            answer = rng.choice(ANSWERS).format(t=topic)
            rows.append(
                DemoMessage(answer_id, run_id, conversation, user.id, "assistant", answer, finished)
            )
        return rows


def _allocate(
    nrng: np.random.Generator, n_users: int, days: int, runs: int
) -> npt.NDArray[np.int64]:
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
    counts: npt.NDArray[np.int64] = nrng.multinomial(runs, p / p.sum()).reshape(n_users, days)
    return counts
