"""graph neighbourhood function: leaner result rows (relations without their ends' names)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-04 03:00:00

``jarvis_kg_neighbourhood`` (0023) returns the capped neighbourhood as two JSON arrays of arrays
of fields. Each relation carried its two ends' names, each quoted and escaped by ``to_json``:
but both ends of every relation in the result are nodes of the same result, read in the same
statement, whose names are already in the nodes' array. The repository now takes them from
there. And each node's and relation's text is made by ``concat()`` instead of ``format()``,
which looks up how to print every argument again on every row and scans its template each time
(the export's lines did the same on 2026-12-03: 12 % cheaper, the same bytes).

The statement is otherwise 0023's, read from that migration (the one place its text lives),
with these two expressions replaced.

Measured on the graph benchmark's data (100k entities, 500k relations; a loaded 2-core machine;
p50 of 25 calls in three alternating rounds; the same rows built both ways), the statement / the
repository's call (rows built in Python):

* hub depth 2, cap 500: 14.8-15.5 -> 13.9-14.3 ms / 18.7-21.2 -> 19.1-19.6 ms
* leaf depth 3, cap 500: 17.9-18.3 -> 17.3-18.0 ms / 23.6-24.1 -> 20.7-23.2 ms
* hub depth 2, cap 2,000: 52.8-57.1 -> 48.9-53.4 ms / 69.2-75.9 -> 64.4-71.5 ms

A few per cent: what the capped neighbourhood costs is spread over its walk, its rows and its
relations (benchmarks/MEMORY_AND_GRAPH.md), not its text.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0029"
down_revision: str | Sequence[str] | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A node: [id, name, type, description, depth, properties].
_NODE_ARRAY = """concat('["', n.id, '", ', to_json(n.name), ', ', to_json(n.type), ', ',
               to_json(n.description), ', ', n.depth, ', ', n.properties, ']')"""

# A relation: [id, source_id, type, target_id, weight, valid_from, valid_to, properties]; a
# float's NaN and infinities are strings in JSON.
_RELATION_ARRAY = """concat('["', r.id, '", "', r.source_id, '", ', to_json(r.type), ', "',
        r.target_id, '", ',
        CASE WHEN r.weight IN ('NaN', 'Infinity', '-Infinity') THEN to_json(r.weight)::text
             ELSE r.weight::text END, ', ',
        coalesce(to_json(r.valid_from)::text, 'null'), ', ',
        coalesce(to_json(r.valid_to)::text, 'null'), ', ', r.properties, ']')"""

_PREVIOUS_NODE_ARRAY = """format('["%s", %s, %s, %s, %s, %s]', n.id, to_json(n.name), to_json(n.type),
               to_json(n.description), n.depth, n.properties)"""


def _migration_0023() -> ModuleType:
    path = Path(__file__).with_name("0023_graph_neighbourhood_function.py")
    spec = importlib.util.spec_from_file_location("jarvis_migration_0023", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _replaced(sql: str, old: str, new: str) -> str:
    assert sql.count(old) == 1, old
    return sql.replace(old, new)


def _previous() -> str:
    return str(_migration_0023().NEIGHBOURHOOD).replace(
        "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1
    )


def upgrade() -> None:
    sql = _replaced(_previous(), str(_migration_0023()._RELATION_ARRAY), _RELATION_ARRAY)
    op.execute(_replaced(sql, _PREVIOUS_NODE_ARRAY, _NODE_ARRAY))


def downgrade() -> None:
    op.execute(_previous())
