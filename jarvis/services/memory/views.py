"""What the memory service returns to pages, tools and the CLI."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

SearchMode = Literal["semantic", "hybrid"]
#: ``progress(done, total)`` after each re-embedded batch.
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class MemoryView:
    id: uuid.UUID
    content: str
    embedding_model: str
    metadata: dict[str, object]
    source: str | None
    created_at: datetime
    #: The conversation the memory came from (its source run's), while it exists.
    conversation_id: uuid.UUID | None = None
    conversation_title: str | None = None

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
    """One search result. ``score``: cosine similarity (semantic) or similarity + 0.1 x text
    relevance (hybrid); always a finite number."""

    id: uuid.UUID
    content: str
    score: float
    created_at: datetime
    source: str | None = None
    embedding_model: str = ""
    metadata: dict[str, object] = field(default_factory=dict)
    vector_rank: int | None = None
    text_rank: int | None = None
    #: The conversation the memory came from (its source run's), while it exists.
    conversation_id: uuid.UUID | None = None
    conversation_title: str | None = None

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
    #: The search page's default minimum similarity for this model (see
    #: :func:`jarvis.services.memory.service.default_min_similarity`).
    min_similarity: float = 0.0

    @property
    def other_models(self) -> dict[str, int]:
        return {m: n for m, n in self.counts.items() if m != self.model_name}


@dataclass(frozen=True, slots=True)
class ReembedReport:
    """A move of one user to ``model_name``: ``moved`` of ``total`` rows (memories and graph
    entities) re-embedded by this call; a later call continues where this one stopped."""

    model_name: str
    moved: int
    total: int
    memories: int = 0
    entities: int = 0


@dataclass(frozen=True, slots=True)
class CatchUpReport:
    """The start-up catch-up: users moved to the instance default and rows re-embedded."""

    model_name: str
    users: int
    rows: int


@dataclass(frozen=True, slots=True)
class IndexReport:
    """Per-user HNSW indexes after a reconcile."""

    created: list[str]
    dropped: list[str]
    kept: list[str]
