"""The knowledge-graph importer without a database: CSV / JSON into validated, typed rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from jarvis.services.knowledge_graph.importer import EntityRow, plan_import


def test_csv_relations_become_rows_and_their_ends_entities() -> None:
    plan = plan_import(
        "source,target,type,source_type,target_type,weight,valid_from\n"
        "Alice,Bob,Knows well,person,person,0.5,2024-01-02\n"
        "bob,Acme,works at,,company,,\n",
        "csv",
    )
    assert plan.ok and plan.rejected == []
    first, second = plan.relations
    assert (first.line, first.source, first.target, first.type) == (1, "Alice", "Bob", "knows_well")
    assert first.weight == 0.5 and first.valid_from == datetime(2024, 1, 2, tzinfo=UTC)
    assert (second.type, second.weight, second.valid_from) == ("works_at", 1.0, None)
    # one entity per case-insensitive name, the first spelling and type win
    assert [(e.name, e.type) for e in plan.entities] == [
        ("Alice", "person"),
        ("Bob", "person"),
        ("Acme", "company"),
    ]


def test_json_entities_come_first_and_keep_their_fields() -> None:
    doc = {
        "entities": [
            {"name": "  Ada   Lovelace ", "type": "Person", "description": " Programmer "},
            {"name": "Engine", "properties": {"year": 1837}},
        ],
        "relations": [{"source": "ada lovelace", "target": "Engine", "relation": "wrote for"}],
    }
    plan = plan_import(json.dumps(doc).encode("utf-8-sig"), "json")
    assert plan.ok
    assert plan.entities == [
        EntityRow("Ada Lovelace", "person", "Programmer", {}),
        EntityRow("Engine", "thing", "", {"year": 1837}),
    ]
    assert plan.relations[0].type == "wrote_for"


def test_a_json_list_is_a_list_of_relations() -> None:
    plan = plan_import(json.dumps([{"source": "A", "target": "B", "type": "x"}]), "json")
    assert plan.ok and len(plan.relations) == 1 and len(plan.entities) == 2


def test_every_bad_row_is_reported_with_its_row_number_and_nothing_is_planned() -> None:
    plan = plan_import(
        "source,target,type,weight,valid_from,valid_to\n"
        "Alice,Bob,knows,1,,\n"
        ",Bob,knows,1,,\n"
        "Alice,Carol,likes,heavy,,\n"
        "Alice,Dan,met,1,2024-05-01,2023-01-01\n"
        "Alice,Eve,met,1,yesterday,\n"
        "Alice,Fay,,1,,\n"
        "Alice,Gus,met,1,,,surplus\n",
        "csv",
    )
    assert not plan.ok and plan.entities == [] and plan.relations == []
    reasons = {r.row: r.reason for r in plan.rejected}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7]
    assert reasons[2] == "source is empty"
    assert "not a number" in reasons[3]
    assert reasons[4] == "valid_to is not after valid_from"
    assert "not a date" in reasons[5]
    assert reasons[6] == "relation type is empty"
    assert reasons[7] == "too many columns"
    assert {r.kind for r in plan.rejected} == {"relation"}


def test_entity_rows_are_checked_too() -> None:
    plan = plan_import(
        json.dumps(
            {
                "entities": [
                    {"name": "Paris", "type": "city"},
                    "not an object",
                    {"name": "x" * 301},
                    {"name": "PARIS", "type": "person"},
                    {"name": "Lyon", "properties": "[1, 2]"},
                ]
            }
        ),
        "json",
    )
    assert [(r.row, r.kind) for r in plan.rejected] == [
        (2, "entity"),
        (3, "entity"),
        (5, "entity"),
        (4, "entity"),
    ]
    assert "appears twice with different types" in plan.rejected[-1].reason
    assert "longer than 300" in plan.rejected[1].reason


def test_file_level_problems() -> None:
    def reasons(data: str, fmt: str = "json", **kw: int) -> list[tuple[int, str, str]]:
        return [(r.row, r.kind, r.reason) for r in plan_import(data, fmt, **kw).rejected]

    assert reasons("{not json") == [(0, "file", "not valid JSON (line 1)")]
    assert reasons('"text"') == [(0, "file", "expected an object with 'entities' and 'relations'")]
    assert reasons('{"entities": {"a": 1}}') == [(0, "file", "'entities' must be a list")]
    assert reasons("{}") == [(0, "file", "no rows found")]
    assert reasons("colour,size\nred,1\n", "csv")[0][1] == "file"
    assert reasons("name\n", "csv") == [(0, "file", "no rows found")]
    assert reasons("a", "xml") == [(0, "file", "unknown format 'xml'")]
    many = json.dumps([{"source": f"A{i}", "target": "B", "type": "x"} for i in range(4)])
    assert reasons(many, max_rows=3) == [(0, "file", "more than 3 rows")]


def test_csv_entities_with_a_header_in_any_case() -> None:
    plan = plan_import(" Name ,TYPE,Description\nParis,city,Capital\nLyon,,\n", "csv")
    assert plan.entities == [EntityRow("Paris", "city", "Capital"), EntityRow("Lyon", "thing")]
    assert plan.relations == []
