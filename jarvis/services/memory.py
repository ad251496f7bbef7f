"""Semantic memory: store, per-user search (semantic or hybrid), delete, browse, re-embed.

A user's memories are embedded with one model at a time (the model of their newest row, or
the instance default). Searches only compare rows of that model; ``reembed`` moves every row
of a user to another model, batch by batch, reporting progress.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from jarvis.clock import Clock
from jarvis.db.repositories.memory import MemoryRow
from jarvis.db.uow import UnitOfWork, UnitOfWorkFactory
from jarvis.errors import ConfigError, JarvisError, NotFoundError, ValidationError
from jarvis.identity import Principal
from jarvis.llm.embedders import Embedder, EmbedderRegistry, describe_model, is_lexical
from jarvis.validation import check_json, clamp_int, clean_line, clean_text, finite_float

log = logging.getLogger(__name__)

MAX_CONTENT = 8000
MAX_K = 100
MAX_QUERY = 1000
MAX_METADATA_BYTES = 16 * 1024
MAX_BATCH = 10_000
SearchMode = Literal["semantic", "hybrid"]
#: ``progress(done, total)`` after each re-embedded batch.
Progress = Callable[[int, int], None]


class OpenAIKeyLookup(Protocol):
    """The acting user's OpenAI key as ``(api_key, base_url)`` (for OpenAI embeddings).

    Raises :class:`NotFoundError` when the user has none (bootstrap: the secrets vault).
    """

    def __call__(self, principal: Principal, /) -> tuple[str, str | None]: ...


@dataclass(frozen=True, slots=True)
class MemoryView:
    id: uuid.UUID
    content: str
    embedding_model: str
    metadata: dict[str, object]
    source: str | None
    created_at: datetime

    def to_dict(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "content": self.content,
            "embedding_model": self.embedding_model,
            "metadata": dict(self.metadata),
            "source": self.source,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class MemoryHit:
    """One search result. ``score``: cosine similarity (semantic) or fused RRF score (hybrid)."""

    id: uuid.UUID
    content: str
    score: float
    created_at: datetime
    source: str | None = None
    embedding_model: str = ""
    metadata: dict[str, object] = field(default_factory=dict)
    vector_rank: int | None = None
    text_rank: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "content": self.content,
            "score": round(self.score, 4),
            "created_at": self.created_at.isoformat(),
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class EmbeddingInfo:
    """What the memory page says about embeddings for this user."""

    model_name: str
    label: str
    lexical: bool
    counts: dict[str, int]

    @property
    def other_models(self) -> dict[str, int]:
        return {m: n for m, n in self.counts.items() if m != self.model_name}


@dataclass(frozen=True, slots=True)
class ReembedReport:
    model_name: str
    moved: int
    total: int


def _view(r: MemoryRow) -> MemoryView:
    return MemoryView(r.id, r.content, r.embedding_model, r.metadata, r.source, r.created_at)


def _hit(r: MemoryRow) -> MemoryHit:
    return MemoryHit(
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


class MemoryService:
    """The memory capability; the agent's ``memory_search`` / ``memory_store`` call this."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        embedder: Embedder,
        clock: Clock,
        *,
        registry: EmbedderRegistry | None = None,
        openai_key: OpenAIKeyLookup | None = None,
    ) -> None:
        self._uow = uow
        self._embedder = embedder
        self._clock = clock
        self._registry = registry or EmbedderRegistry(embedder)
        self._openai_key = openai_key

    # -- embedders ------------------------------------------------------------------------

    def embedder_named(self, principal: Principal, model_name: str) -> Embedder:
        """The embedder for a stored model name, acting as ``principal`` (their OpenAI key)."""
        key_fn = self._openai_key
        lookup = (lambda: key_fn(principal)) if key_fn is not None else None
        try:
            return self._registry.get(model_name, openai_key=lookup)
        except NotFoundError as exc:
            raise ConfigError(
                "OpenAI embeddings need your OpenAI key: add it on the Secrets page first."
            ) from exc

    def _embedder_for(self, principal: Principal, uow: UnitOfWork) -> Embedder:
        """The embedder of the user's newest memory (the instance default when unavailable)."""
        model = uow.memories.latest_model(principal.user_id) or self._embedder.model_name
        if model == self._embedder.model_name:
            return self._embedder
        try:
            return self.embedder_named(principal, model)
        except JarvisError as exc:
            log.warning("embedder %s unavailable, using the default: %s", model, exc)
            return self._embedder

    def embedding_info(self, principal: Principal) -> EmbeddingInfo:
        """The model this user's memories use, and how many rows each model holds."""
        with self._uow(principal) as uow:
            embedder = self._embedder_for(principal, uow)
            counts = uow.memories.count_by_model(principal.user_id)
        return EmbeddingInfo(
            embedder.model_name,
            embedder.label,
            embedder.lexical or is_lexical(embedder.model_name),
            counts,
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
            embedder = self._embedder_for(principal, uow)
            vector = embedder.embed([content])[0]
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
        always the true top k); ``min_score`` drops weaker hits. ``hybrid``: vector and
        PostgreSQL full-text rankings fused with reciprocal rank fusion.
        """
        query = clean_line(
            query, field="query", label="search", max_chars=MAX_QUERY, required=False
        )
        if not query:
            raise ValidationError("Type something to search for.", field="query")
        k = clamp_int(k, 1, MAX_K, field="k", label="number of results")
        min_score = None if min_score is None else finite_float(min_score, field="min_score")
        with self._uow(principal) as uow:
            embedder = self._embedder_for(principal, uow)
            vector = embedder.embed([query])[0]
            if mode == "hybrid":
                rows = uow.memories.hybrid(
                    principal.user_id, embedder.model_name, vector, query, k=k
                )
            elif mode == "semantic":
                rows = uow.memories.semantic(
                    principal.user_id,
                    embedder.model_name,
                    vector,
                    k=k,
                    min_score=-1.0 if min_score is None else min_score,
                )
            else:
                raise ValidationError("Unknown search mode.", field="mode")
            # Read-only on purpose: updating last_accessed_at here would clear the visibility map
            # of the user's pages and turn the index-only scan back into heap reads.
        return [_hit(r) for r in rows]

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
        return [_view(r) for r in rows]

    # -- re-embedding ---------------------------------------------------------------------

    def reembed(
        self,
        principal: Principal,
        model_name: str,
        *,
        progress: Progress | None = None,
        batch_size: int = 200,
    ) -> ReembedReport:
        """Move every memory of the user to ``model_name``; one transaction per batch, so an
        interrupted run can simply be started again."""
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValidationError(
                f"The batch size must be between 1 and {MAX_BATCH:,}.", field="batch_size"
            )
        model_name = clean_line(model_name, field="model", max_chars=100)
        embedder = self.embedder_named(principal, model_name)
        with self._uow(principal) as uow:
            counts = uow.memories.count_by_model(principal.user_id)
        total = sum(n for m, n in counts.items() if m != embedder.model_name)
        moved = 0
        if progress:
            progress(0, total)
        while moved < total:
            with self._uow(principal) as uow:
                batch = uow.memories.batch_not_in_model(
                    principal.user_id, embedder.model_name, batch_size
                )
                if not batch:
                    break
                vectors = embedder.embed([content for _, content in batch])
                uow.memories.set_embeddings(
                    [(memory_id, v) for (memory_id, _), v in zip(batch, vectors, strict=True)],
                    embedder.model_name,
                )
                uow.commit()
            moved += len(batch)
            if progress:
                progress(moved, total)
        return ReembedReport(embedder.model_name, moved, total)


def model_label(model_name: str) -> str:
    """A person-readable name for a stored embedding model name."""
    return describe_model(model_name)


__all__ = [
    "EmbeddingInfo",
    "MemoryHit",
    "MemoryService",
    "MemoryView",
    "OpenAIKeyLookup",
    "ReembedReport",
    "SearchMode",
    "model_label",
]
