"""The knowledge-graph service: :class:`KnowledgeGraphQueries` (the reads) plus the writes:
entities and relations, the agent's facts, and imports.

Imports are parsed and validated by :mod:`.importer` (pure), then written in one transaction:
one query resolves every name, one batched insert per table. The agent's tools call
:meth:`~.queries.KnowledgeGraphQueries.lookup` (``kg_lookup``) and
:meth:`KnowledgeGraphService.add_fact` (``kg_add_fact``); both return objects with ``to_dict()``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from jarvis.db.repositories.knowledge_graph import (
    KnowledgeGraphRepository,
    NewEntity,
    NewRelation,
)
from jarvis.db.uow import UnitOfWork
from jarvis.errors import NotFoundError, ValidationError
from jarvis.identity import Principal
from jarvis.llm.embedders import Embedder
from jarvis.services.knowledge_graph.importer import EntityRow, ImportPlan, plan_import
from jarvis.services.knowledge_graph.queries import (
    KnowledgeGraphQueries,
    entity_view,
    relation_view,
)
from jarvis.services.knowledge_graph.validation import (
    clean_description,
    clean_name,
    clean_type,
    parse_properties,
    parse_weight,
)
from jarvis.services.knowledge_graph.views import (
    EntityView,
    FactView,
    ImportFormat,
    ImportReport,
    RelationView,
)
from jarvis.services.memory.embeddings import entity_text, vectors_or_none

T = TypeVar("T")
#: Entities embedded per call during an import (one progress step each).
IMPORT_EMBED_BATCH = 256


def _invalid(exc: ValueError, field: str, prefix: str = "The") -> ValidationError:
    return ValidationError(f"{prefix} {exc}.", field=field)


def _checked(rule: Callable[[Any], T], value: object, *, field: str) -> T:
    """``rule(value)`` with its :class:`ValueError` as a field error ("The name is empty.")."""
    try:
        return rule(value)
    except ValueError as exc:
        raise _invalid(exc, field) from exc


class KnowledgeGraphService(KnowledgeGraphQueries):
    """Entities, relations and graph queries of the signed-in user's knowledge graph."""

    # -- entities -------------------------------------------------------------------------

    def _embedder(self, principal: Principal, uow: UnitOfWork) -> Embedder:
        """The user's embedder (the same model as their memories)."""
        return self._embedders.for_user(principal, uow)

    @staticmethod
    def _embed_entities(
        embedder: Embedder, entities: Sequence[tuple[str, str]]
    ) -> list[list[float] | None]:
        """One embedding call for many (name, description) pairs (None: nothing to embed)."""
        if not entities:
            return []
        return vectors_or_none(embedder, [entity_text(n, d) for n, d in entities])

    def _new_entity(
        self,
        principal: Principal,
        row: EntityRow,
        vector: Sequence[float] | None,
        model: str,
        now: datetime,
    ) -> NewEntity:
        return NewEntity(
            user_id=principal.user_id,
            name=row.name,
            type=row.type,
            description=row.description,
            properties=row.properties,
            embedding=vector,
            embedding_model=model,
            created_at=now,
        )

    def create_entity(
        self,
        principal: Principal,
        name: str,
        type_: str = "thing",
        description: str = "",
        properties: Mapping[str, object] | None = None,
    ) -> EntityView:
        """Create an entity (names are free text; the same name may exist twice)."""
        row = EntityRow(
            _checked(clean_name, name, field="name"),
            _checked(lambda v: clean_type(v, "thing"), type_, field="type"),
            _checked(clean_description, description, field="description"),
            _checked(parse_properties, dict(properties or {}), field="properties"),
        )
        with self._uow(principal) as uow:
            embedder = self._embedder(principal, uow)
            [vector] = self._embed_entities(embedder, [(row.name, row.description)])
            e = uow.graph.add_entity(
                self._new_entity(principal, row, vector, embedder.model_name, self._clock.now())
            )
            view = entity_view(e)
            uow.commit()
        return view

    def update_entity(
        self,
        principal: Principal,
        entity_id: uuid.UUID,
        *,
        name: str | None = None,
        type_: str | None = None,
        description: str | None = None,
        properties: Mapping[str, object] | None = None,
    ) -> EntityView:
        """Change an entity's fields (``None`` keeps one); the embedding follows."""
        with self._uow(principal) as uow:
            e = uow.graph.get_entity(entity_id)
            if e is None:
                raise NotFoundError("That entity does not exist.")
            if name is not None:
                e.name = _checked(clean_name, name, field="name")
            if type_ is not None:
                e.type = _checked(lambda v: clean_type(v, "thing"), type_, field="type")
            if description is not None:
                e.description = _checked(clean_description, description, field="description")
            if properties is not None:
                e.properties = _checked(parse_properties, dict(properties), field="properties")
            embedder = self._embedder(principal, uow)
            [e.embedding] = self._embed_entities(embedder, [(e.name, e.description)])
            e.embedding_model = embedder.model_name
            e.updated_at = self._clock.now()
            uow.flush()
            view = entity_view(e)
            uow.commit()
        return view

    def delete_entity(self, principal: Principal, entity_id: uuid.UUID) -> None:
        """Delete an entity and (by cascade) every relation touching it."""
        with self._uow(principal) as uow:
            if not uow.graph.delete_entity(entity_id):
                raise NotFoundError("That entity does not exist.")
            uow.commit()

    # -- relations ------------------------------------------------------------------------

    def create_relation(
        self,
        principal: Principal,
        source_id: uuid.UUID,
        target_id: uuid.UUID,
        type_: str,
        *,
        weight: float = 1.0,
        valid_from: datetime | None = None,
        valid_to: datetime | None = None,
        properties: Mapping[str, object] | None = None,
    ) -> RelationView:
        """Relate two of the user's entities (``source -[type]-> target``)."""
        type_ = _checked(lambda v: clean_type(v, what="relation type"), type_, field="type")
        weight = _checked(parse_weight, weight, field="weight")
        if valid_from and valid_to and valid_to <= valid_from:
            raise ValidationError("'Valid to' must be after 'valid from'.", field="valid_to")
        props = _checked(parse_properties, dict(properties or {}), field="properties")
        with self._uow(principal) as uow:
            ends = {e.id: e for e in uow.graph.get_entities([source_id, target_id])}
            if source_id not in ends or target_id not in ends:
                raise NotFoundError("Both entities must exist.")
            r = uow.graph.add_relation(
                NewRelation(
                    user_id=principal.user_id,
                    source_id=source_id,
                    target_id=target_id,
                    type=type_,
                    weight=weight,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    properties=props,
                    created_at=self._clock.now(),
                )
            )
            view = relation_view(r, ends[source_id].name, ends[target_id].name)
            uow.commit()
        return view

    def update_relation(
        self,
        principal: Principal,
        relation_id: uuid.UUID,
        *,
        type_: str | None = None,
        weight: float | None = None,
        valid_from: datetime | None = None,
        valid_to: datetime | None = None,
        clear_validity: bool = False,
    ) -> RelationView:
        """Change a relation's type, weight or validity period (``clear_validity`` empties it)."""
        with self._uow(principal) as uow:
            r = uow.graph.get_relation(relation_id)
            if r is None:
                raise NotFoundError("That relation does not exist.")
            if type_ is not None:
                r.type = _checked(
                    lambda v: clean_type(v, what="relation type"), type_, field="type"
                )
            if weight is not None:
                r.weight = _checked(parse_weight, weight, field="weight")
            if clear_validity:
                r.valid_from = r.valid_to = None
            if valid_from is not None:
                r.valid_from = valid_from
            if valid_to is not None:
                r.valid_to = valid_to
            if r.valid_from and r.valid_to and r.valid_to <= r.valid_from:
                raise ValidationError("'Valid to' must be after 'valid from'.", field="valid_to")
            uow.flush()
            ends = {e.id: e.name for e in uow.graph.get_entities([r.source_id, r.target_id])}
            view = relation_view(r, ends.get(r.source_id, ""), ends.get(r.target_id, ""))
            uow.commit()
        return view

    def delete_relation(self, principal: Principal, relation_id: uuid.UUID) -> None:
        """Delete one relation."""
        with self._uow(principal) as uow:
            if not uow.graph.delete_relation(relation_id):
                raise NotFoundError("That relation does not exist.")
            uow.commit()

    # -- the agent's kg_add_fact ----------------------------------------------------------

    def add_fact(self, principal: Principal, subject: str, relation: str, object_: str) -> FactView:
        """``kg_add_fact``: ``subject -[relation]-> object``; entities are found by name
        (case-insensitive) or created; an identical current fact is not duplicated."""
        try:
            subject_name = clean_name(subject, "subject")
            object_name = clean_name(object_, "object")
            rel_type = clean_type(relation, what="relation")
        except ValueError as exc:
            raise _invalid(exc, "fact") from exc
        now = self._clock.now()
        with self._uow(principal) as uow:
            repo = uow.graph
            ends = repo.by_names(principal.user_id, [subject_name, object_name])
            for name in (subject_name, object_name):
                if name.lower() not in ends:
                    embedder = self._embedder(principal, uow)
                    [vector] = self._embed_entities(embedder, [(name, "")])
                    row = EntityRow(name, "thing")
                    ends[name.lower()] = repo.add_entity(
                        self._new_entity(principal, row, vector, embedder.model_name, now)
                    )
            s, o = ends[subject_name.lower()], ends[object_name.lower()]
            r = repo.find_relation(s.id, o.id, o.name, rel_type)
            created = r is None
            if r is None:
                r = repo.add_relation(
                    NewRelation(
                        user_id=principal.user_id,
                        source_id=s.id,
                        target_id=o.id,
                        type=rel_type,
                        weight=1.0,
                        properties={},
                        created_at=now,
                    )
                )
            fact = FactView(
                entity_view(s), relation_view(r, s.name, o.name), entity_view(o), created
            )
            uow.commit()
        return fact

    # -- import ---------------------------------------------------------------------------

    def import_data(
        self,
        principal: Principal,
        data: str | bytes,
        fmt: ImportFormat,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportReport:
        """Import entities and relations from CSV or JSON: all rows or none.

        The format is described in :mod:`.importer`. Relations refer to entities by name: the
        import's own, the user's existing ones (case-insensitive), or new ones created with
        the given (or ``thing``) type. Every name is resolved in one query; new entities and
        all relations are each written in one batched insert, in one transaction.
        ``progress(done, total)`` counts entities embedded (batch by batch) and then the rows
        written (a background job's progress bar).
        """
        plan = plan_import(data, fmt)
        if not plan.ok:
            return ImportReport(False, 0, 0, 0, plan.rejected)
        with self._uow(principal) as uow:
            created = self._write_import(
                principal, uow.graph, plan, self._embedder(principal, uow), progress
            )
            uow.commit()
        return ImportReport(True, created, len(plan.entities) - created, len(plan.relations), [])

    def _write_import(
        self,
        principal: Principal,
        repo: KnowledgeGraphRepository,
        plan: ImportPlan,
        embedder: Embedder,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Write a valid plan; returns how many entities were created."""
        ids = repo.ids_by_names(principal.user_id, [e.name for e in plan.entities])
        new = [e for e in plan.entities if e.key not in ids]
        total = len(new) + len(plan.relations)
        vectors: list[list[float] | None] = []
        for start in range(0, len(new), IMPORT_EMBED_BATCH):
            batch = new[start : start + IMPORT_EMBED_BATCH]
            vectors += self._embed_entities(embedder, [(e.name, e.description) for e in batch])
            if progress:
                progress(len(vectors), total)
        now = self._clock.now()
        model = embedder.model_name
        rows = [
            self._new_entity(principal, e, v, model, now) for e, v in zip(new, vectors, strict=True)
        ]
        ids.update({e.name.lower(): e.id for e in rows})
        repo.add_entities(rows)
        repo.add_relations(
            [
                NewRelation(
                    user_id=principal.user_id,
                    source_id=ids[rel.source.lower()],
                    target_id=ids[rel.target.lower()],
                    type=rel.type,
                    weight=rel.weight,
                    valid_from=rel.valid_from,
                    valid_to=rel.valid_to,
                    properties=rel.properties,
                    created_at=now,
                )
                for rel in plan.relations
            ]
        )
        if progress:
            progress(total, total)
        return len(rows)
