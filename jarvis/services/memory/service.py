"""Semantic memory: store, per-user search (semantic or hybrid), delete, browse, re-embed.

A user's memories are embedded with their model (:mod:`.embeddings`). Searches compare only
rows of that model: exactly (the true top k) for most users, through the user's own HNSW index
for users with very many memories (:mod:`.indexes`). A text that gives no vector is refused at
store time, and a query that gives none finds nothing by meaning (hybrid: by text only); no
score is ever NaN.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from jarvis.clock import Clock
from jarvis.db.repositories.memory import MemoryRow
from jarvis.db.uow import UnitOfWork, UnitOfWorkFactory
from jarvis.errors import NotFoundError, ValidationError
from jarvis.identity import Principal
from jarvis.llm.embedders import (
    MODEL_ALIASES,
    Embedder,
    describe_model,
    is_lexical,
    is_zero,
)
from jarvis.services.memory.embeddings import UserEmbedders, move_user
from jarvis.services.memory.views import (
    EmbeddingInfo,
    MemoryHit,
    MemoryView,
    Progress,
    ReembedReport,
    SearchMode,
)
from jarvis.validation import check_json, clamp_int, clean_line, clean_text, finite_float

MAX_CONTENT = 8000
MAX_K = 100
MAX_QUERY = 1000
MAX_METADATA_BYTES = 16 * 1024
MAX_BATCH = 10_000


#: Default minimum cosine similarity of the search page, per embedding model. wordllama (the
#: default), measured on 20 question / memory pairs (tests/integration/test_memory_sources.py):
#: related pairs score 0.09-0.85 (median 0.36), unrelated ones median 0.01, 95th percentile
#: 0.12. At 0.12, 19 of 20 related pairs stay and 95 % of unrelated ones go (0.15: 18 and 98 %).
#: The lexical embedder scores shared words (unrelated: 0); sentence embedders (OpenAI, MiniLM)
#: put unrelated text around 0.1-0.2, so their floor is higher.
MIN_SIMILARITY: dict[str, float] = {
    "wordllama": 0.12,
    "lexical": 0.12,
    "openai": 0.25,
    "local": 0.25,
}


def default_min_similarity(model_name: str) -> float:
    """The search page's default minimum similarity for ``model_name`` (0.12 if unknown):
    ``wordllama/...``, ``lexical-hash-...``, ``openai/...``, ``local/...``."""
    family = model_name.split("/", 1)[0].split("-", 1)[0].lower()
    return MIN_SIMILARITY.get(family, 0.12)


def _run_of(source: str | None) -> uuid.UUID | None:
    """The run id a memory's source names (``run:<uuid>`` or a bare uuid), if any."""
    if not source:
        return None
    try:
        return uuid.UUID(source.removeprefix("run:"))
    except ValueError:
        return None


_Item = TypeVar("_Item", MemoryView, MemoryHit)


def _with_conversations(uow: UnitOfWork, items: list[_Item]) -> list[_Item]:
    """``items`` with the conversation each came from (through its source run)."""
    runs = {item.id: _run_of(item.source) for item in items}
    found = uow.memories.conversations_of_runs([r for r in runs.values() if r is not None])
    linked = []
    for item in items:
        run = runs[item.id]
        if run is not None and run in found:
            conversation_id, title = found[run]
            item = replace(item, conversation_id=conversation_id, conversation_title=title)
        linked.append(item)
    return linked


def _view(r: MemoryRow) -> MemoryView:
    return MemoryView(r.id, r.content, r.embedding_model, r.metadata, r.source, r.created_at)


def _hits(rows: list[MemoryRow]) -> list[MemoryHit]:
    """Search rows as hits; a row whose score is not a finite number is never returned."""
    return [
        MemoryHit(
            id=r.id,
            content=r.content,
            score=float(r.score or 0.0),
            created_at=r.created_at,
            source=r.source,
            embedding_model=r.embedding_model,
            metadata=r.metadata,
            vector_rank=r.vector_rank,
            text_rank=r.text_rank,
        )
        for r in rows
        if r.score is None or math.isfinite(r.score)
    ]


class MemoryService:
    """The memory capability; the agent's ``memory_search`` / ``memory_store`` call this."""

    def __init__(self, uow: UnitOfWorkFactory, embedders: UserEmbedders, clock: Clock) -> None:
        self._uow = uow
        self._embedders = embedders
        self._clock = clock

    @property
    def embedders(self) -> UserEmbedders:
        return self._embedders

    # -- embedders ------------------------------------------------------------------------

    def embedder_named(self, principal: Principal, model_name: str) -> Embedder:
        """The embedder for a stored model name, acting as ``principal`` (their OpenAI key)."""
        return self._embedders.named(principal, model_name)

    @staticmethod
    def embedder_choices() -> list[tuple[str, str]]:
        """The models a user can move to, as ``(model name, label)`` (the Memory page's
        picker; ``local`` needs the optional extra, ``openai`` the user's key)."""
        return [(name, describe_model(name)) for name in MODEL_ALIASES.values()]

    def embedding_info(self, principal: Principal) -> EmbeddingInfo:
        """The model this user's memories use, and how many rows each model holds."""
        with self._uow(principal) as uow:
            embedder = self._embedders.for_user(principal, uow)
            counts = uow.memories.count_by_model(principal.user_id)
        return EmbeddingInfo(
            embedder.model_name,
            embedder.label,
            embedder.lexical or is_lexical(embedder.model_name),
            counts,
            min_similarity=default_min_similarity(embedder.model_name),
        )

    # -- store / delete -------------------------------------------------------------------

    def store(
        self,
        principal: Principal,
        content: str,
        *,
        source: str | None = None,
        metadata: Mapping[str, object] | None = None,
    ) -> MemoryView:
        """Embed and save one memory. ``source``: the agent run (or message) that created it;
        ``metadata``: a small JSON object (tags)."""
        content = clean_text(
            content, field="content", label="memory", max_chars=MAX_CONTENT, multiline=True
        )
        source = clean_line(source, field="source", max_chars=200, required=False) or None
        checked = (
            check_json(dict(metadata), field="metadata", max_bytes=MAX_METADATA_BYTES)
            if metadata
            else None
        )
        with self._uow(principal) as uow:
            embedder = self._embedders.for_user(principal, uow)
            vector = embedder.embed([content])[0]
            if is_zero(vector):
                raise ValidationError(
                    "This text gives nothing to search by; add a few words.", field="content"
                )
            row = uow.memories.add(
                user_id=principal.user_id,
                content=content,
                embedding=vector,
                embedding_model=embedder.model_name,
                metadata=checked if isinstance(checked, dict) else None,
                source=source,
                created_at=self._clock.now(),
            )
            uow.commit()
        return _view(row)

    def delete(self, principal: Principal, memory_id: uuid.UUID) -> None:
        """Delete one of the user's memories (another user's id is simply not found)."""
        with self._uow(principal) as uow:
            if not uow.memories.delete(memory_id):
                raise NotFoundError("That memory does not exist.")
            uow.commit()

    def get(self, principal: Principal, memory_id: uuid.UUID) -> MemoryView:
        """One of the user's memories."""
        with self._uow(principal) as uow:
            row = uow.memories.get(memory_id)
        if row is None:
            raise NotFoundError("That memory does not exist.")
        return _view(row)

    # -- search / browse ------------------------------------------------------------------

    def search(
        self,
        principal: Principal,
        query: str,
        k: int = 5,
        *,
        mode: SearchMode = "semantic",
        min_score: float | None = None,
    ) -> list[MemoryHit]:
        """The ``k`` best memories of this user for ``query``.

        ``semantic``: cosine similarity over the user's rows of their embedding model (exact,
        the true top k; approximate, recall@10 >= 0.98, through the user's own HNSW index when
        they have very many memories); ``min_score`` drops weaker hits. ``hybrid``: vector and
        PostgreSQL full-text relevance fused: cosine similarity + 0.1 x text relevance (its
        vector candidates through the same HNSW index when the user has one).
        """
        query = clean_line(
            query, field="query", label="search", max_chars=MAX_QUERY, required=False
        )
        if not query:
            raise ValidationError("Type something to search for.", field="query")
        if mode not in ("semantic", "hybrid"):
            raise ValidationError("Unknown search mode.", field="mode")
        k = clamp_int(k, 1, MAX_K, field="k", label="number of results")
        min_score = None if min_score is None else finite_float(min_score, field="min_score")
        default = self._embedders.default.model_name
        with self._uow(principal) as uow:
            plan = uow.memories.search_plan(principal.user_id, default)
            embedder = self._embedders.resolve(principal, plan.chosen_model)
            vector: list[float] | None = embedder.embed([query])[0]
            if vector is not None and is_zero(vector):
                vector = None  # nothing to compare by meaning
            ann = plan.ann_index and embedder.model_name == (plan.chosen_model or default)
            if mode == "hybrid":
                rows = uow.memories.hybrid(
                    principal.user_id,
                    embedder.model_name,
                    vector,
                    query,
                    k=k,
                    ann_dims=embedder.dim if ann else None,
                )
            elif vector is None:
                rows = []
            else:
                rows = uow.memories.semantic(
                    principal.user_id,
                    embedder.model_name,
                    vector,
                    k=k,
                    min_score=-1.0 if min_score is None else min_score,
                    ann_dims=embedder.dim if ann else None,
                )
            # Read-only on purpose: updating last_accessed_at here would clear the visibility map
            # of the user's pages and turn the index-only scan back into heap reads.
            return _with_conversations(uow, _hits(rows))

    def browse(
        self,
        principal: Principal,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        contains: str | None = None,
        source: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[MemoryView]:
        """The user's memories, newest first, filtered by date range, text and source."""
        with self._uow(principal) as uow:
            rows = uow.memories.browse(
                principal.user_id,
                since=since,
                until=until,
                contains=clean_line(
                    contains,
                    field="contains",
                    label="text filter",
                    max_chars=MAX_QUERY,
                    required=False,
                )
                or None,
                source=clean_line(source, field="source", max_chars=200, required=False) or None,
                limit=clamp_int(limit, 1, 500, field="limit"),
                offset=clamp_int(offset, 0, 10**9, field="offset"),
            )
            return _with_conversations(uow, [_view(r) for r in rows])

    # -- re-embedding ---------------------------------------------------------------------

    def reembed(
        self,
        principal: Principal,
        model_name: str,
        *,
        progress: Progress | None = None,
        batch_size: int = 200,
    ) -> ReembedReport:
        """Move the user to ``model_name``: their choice is recorded first, then every memory
        and graph entity is re-embedded, one transaction per batch, with ``progress(done,
        total)``. Resumable: after an interruption, call it again to finish."""
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValidationError(
                f"The batch size must be between 1 and {MAX_BATCH:,}.", field="batch_size"
            )
        model_name = clean_line(model_name, field="model", max_chars=100)
        embedder = self.embedder_named(principal, model_name)
        return move_user(
            self._uow,
            principal,
            embedder,
            default_model=self._embedders.default.model_name,
            progress=progress,
            batch_size=batch_size,
        )


def model_label(model_name: str) -> str:
    """A person-readable name for a stored embedding model name."""
    return describe_model(model_name)
