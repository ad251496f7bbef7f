"""Your semantic memory: store, search (semantic or hybrid), browse, read, delete.

The agent reads and writes the same memories (``memory_search`` / ``memory_store``); another
user's memory is never visible (an unknown id and someone else's id are both 404).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from jarvis.api.deps import CurrentUser, ServicesDep
from jarvis.api.fields import fields_named
from jarvis.api.problems import PROBLEM_RESPONSES
from jarvis.services.memory import (
    MAX_CONTENT,
    MAX_K,
    MAX_QUERY,
    MemoryHit,
    MemoryView,
    SearchMode,
)

router = APIRouter(prefix="/memory", tags=["memory"], responses=PROBLEM_RESPONSES)


class Memory(BaseModel):
    id: uuid.UUID
    content: str
    source: str | None = Field(description="What stored it (an agent run: run:<id>), if known.")
    metadata: dict[str, Any]
    embedding_model: str
    created_at: datetime

    @classmethod
    def of(cls, m: MemoryView) -> Memory:
        return cls(
            id=m.id,
            content=m.content,
            source=m.source,
            metadata=dict(m.metadata),
            embedding_model=m.embedding_model,
            created_at=m.created_at,
        )


class Hit(Memory):
    score: float = Field(
        description=(
            "Cosine similarity (semantic); in hybrid mode, cosine similarity plus 0.1 x the "
            "full-text relevance (0-1)."
        )
    )
    vector_rank: int | None = None
    text_rank: int | None = Field(None, description="Full-text rank (hybrid only).")

    @classmethod
    def of_hit(cls, h: MemoryHit) -> Hit:
        return cls(
            id=h.id,
            content=h.content,
            source=h.source,
            metadata=dict(h.metadata),
            embedding_model=h.embedding_model,
            created_at=h.created_at,
            score=h.score,
            vector_rank=h.vector_rank,
            text_rank=h.text_rank,
        )


class NewMemory(BaseModel):
    content: str = Field(min_length=1, max_length=MAX_CONTENT, examples=["I prefer tea to coffee."])
    source: str | None = Field(None, max_length=200)
    metadata: dict[str, Any] | None = Field(
        None, description="A small JSON object (tags); at most 16 KB, 20 levels deep."
    )


@router.get("/search", response_model=list[Hit])
def search_memories(
    user: CurrentUser,
    services: ServicesDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY, description="What to look for.")],
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many results.")] = 5,
    mode: Annotated[
        SearchMode, Query(description="semantic (cosine) or hybrid (vector + full text).")
    ] = "semantic",
    min_score: Annotated[
        float | None, Query(ge=-1, le=1, description="Semantic mode: drop weaker hits.")
    ] = None,
) -> list[Hit]:
    """Your ``k`` memories closest to ``q``, best first."""
    with fields_named(query="q"):
        hits = services.memory.search(user, q, k, mode=mode, min_score=min_score)
    return [Hit.of_hit(h) for h in hits]


@router.post("", response_model=Memory, status_code=status.HTTP_201_CREATED)
def add_memory(body: NewMemory, user: CurrentUser, services: ServicesDep) -> Memory:
    """Embed and store one memory."""
    return Memory.of(
        services.memory.store(user, body.content, source=body.source, metadata=body.metadata)
    )


@router.get("", response_model=list[Memory])
def browse_memories(
    user: CurrentUser,
    services: ServicesDep,
    since: Annotated[datetime | None, Query(description="Stored at or after.")] = None,
    until: Annotated[datetime | None, Query(description="Stored before.")] = None,
    contains: Annotated[
        str | None, Query(max_length=MAX_QUERY, description="Text the memory contains.")
    ] = None,
    source: Annotated[str | None, Query(max_length=200, description="A run id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[Memory]:
    """Your memories, newest first (page with ``limit`` / ``offset``)."""
    return [
        Memory.of(m)
        for m in services.memory.browse(
            user,
            since=since,
            until=until,
            contains=contains,
            source=source,
            limit=limit,
            offset=offset,
        )
    ]


@router.get("/{memory_id}", response_model=Memory)
def get_memory(memory_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> Memory:
    return Memory.of(services.memory.get(user, memory_id))


@router.delete("/{memory_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_memory(memory_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> None:
    services.memory.delete(user, memory_id)
