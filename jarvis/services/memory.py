"""Semantic memory: store, per-user search (semantic or hybrid), delete, browse, re-embed.

A user's memories are embedded with one model at a time (the model of their newest row, or
the instance default). Searches only compare rows of that model; ``reembed`` moves every row
of a user to another model, batch by batch, reporting progress.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from jarvis.clock import Clock
from jarvis.db.repositories.memory import MemoryRepository, MemoryRow
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import ConfigError, JarvisError, NotFoundError, ValidationError
from jarvis.identity import Principal
from jarvis.llm.embedders import Embedder, EmbedderRegistry, describe_model, is_lexical

log = logging.getLogger(__name__)

MAX_CONTENT = 8000
MAX_K = 100
SearchMode = Literal["semantic", "hybrid"]
#: Returns the (api_key, base_url) of the user's OpenAI secret, or raises.
OpenAIKeyLookup = Callable[[Principal], tuple[str, str | None]]
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class MemoryView:
    id: uuid.UUID
    content: str
    embedding_model: str
    metadata: dict[str, Any]
    source: str | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["id"] = str(self.id)
        d["created_at"] = self.created_at.isoformat()
        return d


@dataclass(frozen=True, slots=True)
class MemoryHit:
    """One search result. ``score``: cosine similarity (semantic) or fused RRF score (hybrid)."""

    id: uuid.UUID
    content: str
    score: float
    created_at: datetime
    source: str | None = None
    embedding_model: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    vector_rank: int | None = None
    text_rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
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
        lookup = None
        if self._openai_key is not None:
            key_fn = self._openai_key
            lookup = lambda: key_fn(principal)  # noqa: E731
        try:
            return self._registry.get(model_name, openai_key=lookup)
        except NotFoundError as exc:
            raise ConfigError(
                "OpenAI embeddings need your OpenAI key: add it on the Secrets page first."
            ) from exc

    def _embedder_for(self, principal: Principal, repo: MemoryRepository) -> Embedder:
        model = repo.latest_model(principal.user_id) or self._embedder.model_name
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
            repo = MemoryRepository(uow.session)
            embedder = self._embedder_for(principal, repo)
            counts = repo.count_by_model(principal.user_id)
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
        metadata: dict[str, Any] | None = None,
    ) -> MemoryView:
        """Embed and save one memory. ``source``: the agent run (or message) that created it."""
        content = (content or "").strip()
        if not content:
            raise ValidationError("A memory needs some text.", field="content")
        if len(content) > MAX_CONTENT:
            raise ValidationError(f"A memory is at most {MAX_CONTENT} characters.", field="content")
        with self._uow(principal) as uow:
            repo = MemoryRepository(uow.session)
            embedder = self._embedder_for(principal, repo)
            vector = embedder.embed([content])[0]
            row = repo.add(
                user_id=principal.user_id,
                content=content,
                embedding=vector,
                embedding_model=embedder.model_name,
                metadata=metadata,
                source=(str(source)[:200] if source else None),
                created_at=self._clock.now(),
            )
            view = MemoryView(
                row.id,
                row.content,
                row.embedding_model,
                dict(row.metadata_ or {}),
                row.source,
                row.created_at,
            )
            uow.commit()
        return view

    def delete(self, principal: Principal, memory_id: uuid.UUID) -> None:
        """Delete one of the user's memories (another user's id is simply not found)."""
        with self._uow(principal) as uow:
            if not MemoryRepository(uow.session).delete(memory_id):
                raise NotFoundError("That memory does not exist.")
            uow.commit()

    def get(self, principal: Principal, memory_id: uuid.UUID) -> MemoryView:
        with self._uow(principal) as uow:
            m = MemoryRepository(uow.session).get(memory_id)
            if m is None:
                raise NotFoundError("That memory does not exist.")
            return MemoryView(
                m.id, m.content, m.embedding_model, dict(m.metadata_ or {}), m.source, m.created_at
            )

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
        query = (query or "").strip()
        if not query:
            raise ValidationError("Type something to search for.", field="query")
        k = max(1, min(int(k), MAX_K))
        with self._uow(principal) as uow:
            repo = MemoryRepository(uow.session)
            embedder = self._embedder_for(principal, repo)
            vector = embedder.embed([query])[0]
            if mode == "hybrid":
                rows = repo.hybrid(principal.user_id, embedder.model_name, vector, query, k=k)
            elif mode == "semantic":
                rows = repo.semantic(
                    principal.user_id,
                    embedder.model_name,
                    vector,
                    k=k,
                    min_score=-1.0 if min_score is None else float(min_score),
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
            rows = MemoryRepository(uow.session).browse(
                principal.user_id,
                since=since,
                until=until,
                contains=(contains or "").strip() or None,
                source=(source or "").strip() or None,
                limit=max(1, min(limit, 500)),
                offset=max(0, offset),
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
        """Move every memory of the user to ``model_name``; one transaction per batch."""
        embedder = self.embedder_named(principal, model_name)
        with self._uow(principal) as uow:
            counts = MemoryRepository(uow.session).count_by_model(principal.user_id)
        total = sum(n for m, n in counts.items() if m != embedder.model_name)
        moved = 0
        if progress:
            progress(0, total)
        while moved < total:
            with self._uow(principal) as uow:
                repo = MemoryRepository(uow.session)
                batch = next(
                    repo.batches_not_in_model(principal.user_id, embedder.model_name, batch_size),
                    [],
                )
                if not batch:
                    break
                vectors = embedder.embed([content for _, content in batch])
                for (memory_id, _), vector in zip(batch, vectors, strict=True):
                    repo.set_embedding(memory_id, vector, embedder.model_name)
                uow.commit()
            moved += len(batch)
            if progress:
                progress(moved, total)
        return ReembedReport(embedder.model_name, moved, total)


def model_label(model_name: str) -> str:
    return describe_model(model_name)


__all__ = [
    "EmbeddingInfo",
    "MemoryHit",
    "MemoryService",
    "MemoryView",
    "ReembedReport",
    "model_label",
]
