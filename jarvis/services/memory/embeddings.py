"""Which embedder a user's memories and graph entities use, and moving a user to another one.

A user's model is the one they chose (``users.embedding_model``, set by a move) or, when they
chose none, the instance default (``JARVIS_EMBEDDER``, wordllama). Memories and knowledge-graph
entities both follow it, so a graph search compares vectors of the same model as the memory
search.

A move (:func:`move_user`) records the new choice first, then re-embeds the user's rows batch
by batch, one transaction per batch, reporting ``progress(done, total)``: an interrupted move is
resumed by calling it again (it picks the rows not yet in the new model), which is what a
background job will do. Rows whose text gives no vector store NULL (never a zero vector).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from jarvis.db.uow import UnitOfWork, UnitOfWorkFactory
from jarvis.errors import ConfigError, JarvisError, NotFoundError
from jarvis.identity import Principal
from jarvis.llm.embedders import Embedder, EmbedderRegistry, is_zero
from jarvis.services.memory.views import CatchUpReport, Progress, ReembedReport

log = logging.getLogger(__name__)

# A row to move: its id first.
_Row = TypeVar("_Row", bound=tuple[Any, ...])


class OpenAIKeyLookup(Protocol):
    """The acting user's OpenAI key as ``(api_key, base_url)`` (for OpenAI embeddings).

    Raises :class:`NotFoundError` when the user has none (bootstrap: the secrets vault).
    """

    def __call__(self, principal: Principal, /) -> tuple[str, str | None]: ...


def vectors_or_none(embedder: Embedder, texts: Sequence[str]) -> list[list[float] | None]:
    """``embedder.embed(texts)`` with the zero vector (nothing to embed) as None."""
    return [None if is_zero(v) else v for v in embedder.embed(list(texts))]


def entity_text(name: str, description: str) -> str:
    """What an entity's embedding is computed from."""
    return f"{name}. {description}".strip()


class UserEmbedders:
    """The embedder of each user (their chosen model, else the instance default)."""

    def __init__(
        self, registry: EmbedderRegistry, openai_key: OpenAIKeyLookup | None = None
    ) -> None:
        self.registry = registry
        self._openai_key = openai_key

    @property
    def default(self) -> Embedder:
        return self.registry.default

    def named(self, principal: Principal, model_name: str) -> Embedder:
        """The embedder for a stored model name, acting as ``principal`` (their OpenAI key)."""
        key_fn = self._openai_key
        lookup = (lambda: key_fn(principal)) if key_fn is not None else None
        try:
            return self.registry.get(model_name, openai_key=lookup)
        except NotFoundError as exc:
            raise ConfigError(
                "OpenAI embeddings need your OpenAI key: add it on the Secrets page first."
            ) from exc

    def resolve(self, principal: Principal, chosen: str | None) -> Embedder:
        """The embedder for a chosen model (None: the default); the default, with a warning
        in the log, when the chosen one is unavailable (e.g. the OpenAI key was removed)."""
        if chosen is None or chosen == self.default.model_name:
            return self.default
        try:
            return self.named(principal, chosen)
        except JarvisError as exc:
            log.warning("embedder %s unavailable, using the default: %s", chosen, exc)
            return self.default

    def for_user(self, principal: Principal, uow: UnitOfWork) -> Embedder:
        """The user's embedder, looked up in ``uow``."""
        return self.resolve(principal, uow.memories.chosen_model(principal.user_id))


def move_user(
    uow: UnitOfWorkFactory,
    principal: Principal,
    embedder: Embedder,
    *,
    default_model: str,
    progress: Progress | None = None,
    batch_size: int = 200,
) -> ReembedReport:
    """Move the user's memories and graph entities to ``embedder`` (see the module)."""
    model = embedder.model_name
    user_id = principal.user_id
    with uow(principal) as w:
        w.memories.choose_model(user_id, None if model == default_model else model)
        memories = sum(n for m, n in w.memories.count_by_model(user_id).items() if m != model)
        entities = w.graph.count_entities_not_in_model(user_id, model)
        w.commit()
    total = memories + entities
    moved_memories = moved_entities = 0
    if progress:
        progress(0, total)

    def store_memories(w: UnitOfWork, batch: list[tuple[uuid.UUID, str]]) -> None:
        vectors = vectors_or_none(embedder, [content for _, content in batch])
        w.memories.set_embeddings(
            [(memory_id, v) for (memory_id, _), v in zip(batch, vectors, strict=True)], model
        )

    def store_entities(w: UnitOfWork, rows: list[tuple[uuid.UUID, str, str]]) -> None:
        vectors = vectors_or_none(embedder, [entity_text(n, d) for _, n, d in rows])
        w.graph.set_entity_embeddings(
            [(entity_id, v) for (entity_id, _, _), v in zip(rows, vectors, strict=True)], model
        )

    def memories_moved(n: int) -> None:
        nonlocal moved_memories
        moved_memories += n
        if progress:
            progress(min(moved_memories, total), total)

    def entities_moved(n: int) -> None:
        nonlocal moved_entities
        moved_entities += n
        if progress:
            progress(min(moved_memories + moved_entities, total), total)

    _in_batches(
        uow,
        principal,
        lambda w, after: w.memories.batch_not_in_model(user_id, model, batch_size, after=after),
        store_memories,
        memories_moved,
    )
    _in_batches(
        uow,
        principal,
        lambda w, after: w.graph.entities_not_in_model(user_id, model, batch_size, after=after),
        store_entities,
        entities_moved,
    )
    moved = moved_memories + moved_entities
    return ReembedReport(model, moved, max(total, moved), moved_memories, moved_entities)


def _in_batches(
    uow: UnitOfWorkFactory,
    principal: Principal,
    fetch: Callable[[UnitOfWork, uuid.UUID | None], list[_Row]],
    store: Callable[[UnitOfWork, list[_Row]], None],
    moved: Callable[[int], None],
) -> None:
    """Fetch the next batch of rows (by id, from past the last batch's last id) and store it,
    one transaction each, until none is left. Each batch starts where the last one ended:
    reading past every row already moved made a move quadratic (69 ms a batch with 90 % of
    100,000 entities done). A row written in the old model behind the cursor meanwhile (a
    write that chose the model before the move did) is found by one more pass from the start;
    the move ends on a pass from the start that finds nothing."""
    after: uuid.UUID | None = None
    while True:
        with uow(principal) as w:
            batch = fetch(w, after)
            if batch:
                store(w, batch)
                w.commit()
        if not batch:
            if after is None:
                return
            after = None
            continue
        after = batch[-1][0]
        moved(len(batch))


class EmbeddingMaintenance:
    """The owner's catch-up after a change of the instance default (``jarvis db upgrade``,
    ``jarvis up``, ``jarvis embeddings catch-up``): every user who follows the default but
    still has rows of another model is moved to it, offline (the default needs no key).
    ``uow`` must see every user's rows (the owner: a superuser or BYPASSRLS role)."""

    def __init__(self, uow: UnitOfWorkFactory, default: Embedder) -> None:
        self._uow = uow
        self._default = default

    def catch_up(
        self,
        *,
        progress: Callable[[str, int, int], None] | None = None,
        batch_size: int = 500,
    ) -> CatchUpReport:
        """Move the users left behind; ``progress(email, done, total)`` per batch."""
        model = self._default.model_name
        with self._uow() as w:
            users = w.memories.users_off_default(model)
        rows = 0
        for user_id, email in users:
            principal = Principal(user_id=user_id, email=email, role="user")
            report = move_user(
                self._uow,
                principal,
                self._default,
                default_model=model,
                progress=_for_user(progress, email),
                batch_size=batch_size,
            )
            rows += report.moved
        return CatchUpReport(model, len(users), rows)


def _for_user(progress: Callable[[str, int, int], None] | None, email: str) -> Progress | None:
    if progress is None:
        return None
    return lambda done, total: progress(email, done, total)
