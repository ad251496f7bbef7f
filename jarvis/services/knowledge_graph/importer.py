"""Reading a CSV or JSON import into typed, validated rows (pure: no database, no embedder).

:func:`plan_import` is all the service needs: it returns every entity the import mentions
(one per case-insensitive name: the file's own entities first, then the ends of relations
not declared as entities), the relations, and the rows it rejected with the reason. An import
with any rejected row writes nothing.

JSON: ``{"entities": [{name, type, description, properties}], "relations": [{source, target,
type, source_type, target_type, weight, valid_from, valid_to, properties}]}``, or just a list
of relations. CSV: a header with ``name`` (entities) or ``source,target`` (relations; also
``type``, ``source_type``, ``target_type``, ``weight``, ``valid_from``, ``valid_to``).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime

from jarvis.errors import ValidationError
from jarvis.services.knowledge_graph.validation import (
    check_validity,
    clean_description,
    clean_name,
    clean_type,
    parse_datetime,
    parse_properties,
    parse_weight,
)
from jarvis.services.knowledge_graph.views import RejectedRow
from jarvis.validation import JsonValue, decode_utf8, json_text_depth

MAX_IMPORT_ROWS = 20_000
#: The largest file read (the page's upload limit is the same).
MAX_IMPORT_BYTES = 20 * 1024 * 1024
#: {"entities": [{..., "properties": {...}}]}: the properties' own limit plus three levels.
MAX_IMPORT_DEPTH = 13
_CSV_HEADER_HELP = "the header needs 'name' (entities) or 'source,target,type' (relations)"


@dataclass(frozen=True, slots=True)
class EntityRow:
    """An entity of the import (cleaned)."""

    name: str
    type: str
    description: str = ""
    properties: dict[str, JsonValue] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Names match case-insensitively."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class RelationRow:
    """A relation of the import (cleaned): its ends are entity names."""

    line: int
    source: str
    target: str
    type: str
    source_type: str = "thing"
    target_type: str = "thing"
    weight: float = 1.0
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    properties: dict[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What to write (``entities`` to find or create, ``relations``), or why not."""

    entities: list[EntityRow]
    relations: list[RelationRow]
    rejected: list[RejectedRow]

    @property
    def ok(self) -> bool:
        return not self.rejected


@dataclass(slots=True)
class _RawRows:
    """Items read from the file before validation: (1-based row, item)."""

    entities: list[tuple[int, object]]
    relations: list[tuple[int, object]]
    rejected: list[RejectedRow]


def plan_import(data: str | bytes, fmt: str, *, max_rows: int = MAX_IMPORT_ROWS) -> ImportPlan:
    """Parse and validate an import; ``rejected`` lists every bad row (or the bad file: not
    UTF-8, too large, nested too deeply, not CSV or JSON)."""
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > MAX_IMPORT_BYTES:
        return _plan_error(f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB")
    if isinstance(data, bytes):
        try:
            text = decode_utf8(data, field="file", label="file")
        except ValidationError as exc:
            return _plan_error(str(exc).removeprefix("The file ").rstrip("."))
    else:
        text = data
    raw = _read(text, fmt)
    entity_rows, rejected = _entity_rows(raw.entities)
    relations, relation_rejects = _relation_rows(raw.relations)
    rejected = raw.rejected + rejected + relation_rejects
    if not rejected and len(entity_rows) + len(relations) > max_rows:
        rejected.append(RejectedRow(0, "file", f"more than {max_rows} rows"))
    if not rejected and not entity_rows and not relations:
        rejected.append(RejectedRow(0, "file", "no rows found"))
    entities: dict[str, EntityRow] = {}
    for line, row in entity_rows:
        first = entities.setdefault(row.key, row)
        if first.type != row.type:
            rejected.append(
                RejectedRow(line, "entity", f"{row.name!r} appears twice with different types")
            )
    if rejected:
        return ImportPlan([], [], rejected)
    for rel in relations:
        for name, type_ in ((rel.source, rel.source_type), (rel.target, rel.target_type)):
            entities.setdefault(name.lower(), EntityRow(name, type_))
    return ImportPlan(list(entities.values()), relations, [])


def _plan_error(reason: str) -> ImportPlan:
    return ImportPlan([], [], [RejectedRow(0, "file", reason)])


def _read(text: str, fmt: str) -> _RawRows:
    if fmt == "json":
        return _read_json(text)
    if fmt == "csv":
        return _read_csv(text)
    return _file_error(f"unknown format {fmt!r}")


def _file_error(reason: str) -> _RawRows:
    return _RawRows([], [], [RejectedRow(0, "file", reason)])


def _read_json(text: str) -> _RawRows:
    if json_text_depth(text) > MAX_IMPORT_DEPTH:  # before parsing: no recursion on 2,000 levels
        return _file_error(f"nested too deeply (at most {MAX_IMPORT_DEPTH} levels)")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return _file_error(f"not valid JSON (line {exc.lineno})")
    except ValueError:  # an integer longer than Python converts
        return _file_error("not valid JSON (a number is too long)")
    if isinstance(doc, list):
        doc = {"relations": doc}
    if not isinstance(doc, dict):
        return _file_error("expected an object with 'entities' and 'relations'")
    raw = _RawRows([], [], [])
    for key, target in (("entities", raw.entities), ("relations", raw.relations)):
        items = doc.get(key) or []
        if not isinstance(items, list):
            return _file_error(f"'{key}' must be a list")
        target.extend((i + 1, item) for i, item in enumerate(items))
    return raw


def _read_csv(text: str) -> _RawRows:
    reader = csv.DictReader(io.StringIO(text))
    try:
        fieldnames = reader.fieldnames or []
    except csv.Error as exc:
        return _file_error(f"not readable as CSV ({exc})"[:200])
    header = {(h or "").strip().lower() for h in fieldnames}
    is_relations = {"source", "target"} <= header
    if not is_relations and "name" not in header:
        return _file_error(_CSV_HEADER_HELP)
    kind = "relation" if is_relations else "entity"
    raw = _RawRows([], [], [])
    target = raw.relations if is_relations else raw.entities
    try:
        for i, row in enumerate(reader, start=1):
            if None in row:  # DictReader files surplus cells under the key None
                raw.rejected.append(RejectedRow(i, kind, "too many columns"))
                continue
            target.append(
                (i, {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()})
            )
    except csv.Error as exc:  # a cell over the csv module's field limit, a stray quote...
        return _file_error(f"not readable as CSV (line {reader.line_num}: {exc})"[:200])
    return raw


def _entity_rows(
    items: list[tuple[int, object]],
) -> tuple[list[tuple[int, EntityRow]], list[RejectedRow]]:
    rows: list[tuple[int, EntityRow]] = []
    rejected: list[RejectedRow] = []
    for line, item in items:
        if not isinstance(item, dict):
            rejected.append(RejectedRow(line, "entity", "not an object"))
            continue
        try:
            row = EntityRow(
                name=clean_name(item.get("name")),
                type=clean_type(item.get("type"), "thing"),
                description=clean_description(item.get("description")),
                properties=parse_properties(item.get("properties")),
            )
        except ValueError as exc:
            rejected.append(RejectedRow(line, "entity", str(exc)))
        else:
            rows.append((line, row))
    return rows, rejected


def _relation_rows(items: list[tuple[int, object]]) -> tuple[list[RelationRow], list[RejectedRow]]:
    rows: list[RelationRow] = []
    rejected: list[RejectedRow] = []
    for line, item in items:
        if not isinstance(item, dict):
            rejected.append(RejectedRow(line, "relation", "not an object"))
            continue
        try:
            valid_from = parse_datetime(item.get("valid_from"))
            valid_to = parse_datetime(item.get("valid_to"))
            check_validity(valid_from, valid_to)
            rows.append(
                RelationRow(
                    line=line,
                    source=clean_name(item.get("source"), "source"),
                    target=clean_name(item.get("target"), "target"),
                    type=clean_type(item.get("type") or item.get("relation"), what="relation type"),
                    source_type=clean_type(item.get("source_type"), "thing"),
                    target_type=clean_type(item.get("target_type"), "thing"),
                    weight=parse_weight(item.get("weight")),
                    valid_from=valid_from,
                    valid_to=valid_to,
                    properties=parse_properties(item.get("properties")),
                )
            )
        except ValueError as exc:
            rejected.append(RejectedRow(line, "relation", str(exc)))
    return rows, rejected
