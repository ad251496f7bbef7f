"""The capped neighbourhood's ids are parsed from PostgreSQL's text without ``UUID.__init__``:
the result must be a UUID in every way that matters to the code that uses it."""

from __future__ import annotations

import copy
import pickle
import random
import uuid

import pytest

from jarvis.db.repositories.knowledge_graph import _parsed_uuid

CASES = [
    uuid.UUID(int=0),
    uuid.UUID(int=(1 << 128) - 1),
    uuid.UUID("00000000-0000-0000-0000-000000000001"),
    uuid.UUID("a7e411cf-a51b-4ee6-b214-095d95b5ce2c"),
    # the same ids in every pytest-xdist worker (each collects the tests itself)
    *(uuid.UUID(int=random.Random(7).getrandbits(128) ^ i, version=4) for i in range(50)),
]


@pytest.mark.parametrize("expected", CASES, ids=str)
def test_a_parsed_id_is_the_uuid_it_names(expected: uuid.UUID) -> None:
    got = _parsed_uuid(str(expected))  # the form to_json(uuid) writes
    assert type(got) is uuid.UUID
    assert got == expected and hash(got) == hash(expected)
    assert {expected: "kept"}[got] == "kept"  # found as a dict key (nodes by id)
    assert str(got) == str(expected) and got.hex == expected.hex and got.bytes == expected.bytes
    assert got.version == expected.version
    assert pickle.loads(pickle.dumps(got)) == expected  # Streamlit state and caches pickle
    assert copy.deepcopy(got) == expected
    with pytest.raises(TypeError):  # still immutable
        got.int = 5  # type: ignore[misc]
