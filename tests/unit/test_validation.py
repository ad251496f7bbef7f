"""The one text rule and the JSON limits (jarvis.validation): pure, no database."""

from __future__ import annotations

import json
import math

import pytest

from jarvis.errors import ValidationError
from jarvis.validation import (
    MAX_JSON_DEPTH,
    check_json,
    check_text,
    clean_line,
    clean_text,
    decode_utf8,
    json_text_depth,
    parse_json,
    storable_json,
    storable_text,
)

BAD_TEXT = {
    "nul": "a\x00b",
    "lone surrogate": "a\ud800b",
    "escape": "red\x1b[31m",
    "bell": "ding\x07",
    "delete": "x\x7fy",
    "c1 control": "x\x85y",
}


@pytest.mark.parametrize("value", BAD_TEXT.values(), ids=BAD_TEXT.keys())
@pytest.mark.parametrize("multiline", [False, True])
def test_garbage_characters_are_refused_with_the_field(value: str, multiline: bool) -> None:
    with pytest.raises(ValidationError) as info:
        clean_text(value, field="title", max_chars=100, multiline=multiline)
    assert info.value.field == "title"
    assert "title" in str(info.value)


def test_the_message_never_quotes_the_value() -> None:
    with pytest.raises(ValidationError) as info:
        clean_text("sk-secret\x00value", field="value", label="secret value", max_chars=100)
    assert "sk-secret" not in str(info.value)
    assert "NUL" in str(info.value)


def test_multiline_text_keeps_newlines_and_tabs_and_normalises_line_ends() -> None:
    text = clean_text(
        "  one\r\ntwo\rthree\n\tfour  ", field="content", max_chars=100, multiline=True
    )
    assert text == "one\ntwo\nthree\n\tfour"


def test_one_line_text_folds_newlines_and_tabs_into_spaces() -> None:
    assert clean_line(" a\tb \r\n  c ", field="name", max_chars=100) == "a b c"


def test_length_is_counted_after_cleaning() -> None:
    assert clean_line("a" + " " * 500 + "b", field="name", max_chars=3) == "a b"
    with pytest.raises(ValidationError, match="too long"):
        clean_line("x" * 1_000_000, field="name", max_chars=300)


def test_empty_is_refused_unless_optional() -> None:
    with pytest.raises(ValidationError, match="Enter a title"):
        clean_line("   ", field="title", max_chars=10)
    assert clean_line(None, field="title", max_chars=10, required=False) == ""


def test_non_text_is_refused() -> None:
    with pytest.raises(ValidationError, match="must be text"):
        clean_line(12, field="title", max_chars=10)


def test_ordinary_unicode_passes() -> None:
    text = "Zoë 東京 👩‍🔬 — ½"
    assert clean_line(text, field="name", max_chars=50) == text


def test_check_text_keeps_the_value_exactly() -> None:
    assert check_text(" a b ", field="value") == " a b "
    with pytest.raises(ValidationError):
        check_text("a\ud800", field="value")


# -- JSON -----------------------------------------------------------------------------------------


def test_json_depth_ignores_brackets_inside_strings() -> None:
    assert json_text_depth('{"a": "[[[[{{{{", "b": [1, [2]]}') == 3
    assert json_text_depth('"\\"[["') == 0


def test_deeply_nested_json_text_is_refused_without_recursion() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ValidationError, match="nested too deeply") as info:
        parse_json(deep, field="file", max_bytes=10**6)
    assert info.value.field == "file"


def test_json_at_the_depth_limit_parses() -> None:
    doc = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json(doc, field="x") is not None


def test_deeply_nested_python_data_is_refused_without_recursion() -> None:
    value: object = "leaf"
    for _ in range(50_000):
        value = {"k": value}
    with pytest.raises(ValidationError, match="nested too deeply"):
        check_json(value, field="properties")


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ('{"a": "x\\u0000y"}', "NUL"),
        ('{"a": "\\ud800"}', "surrogate"),
        ('{"a\\u001b": 1}', "escape character"),
        ('{"a": NaN}', "not finite"),
        ('{"a": Infinity}', "not finite"),
        ('{"a": 1' + "0" * 40 + "}", "too large"),
        ("{not json", "not valid JSON"),
    ],
)
def test_json_values_postgres_cannot_store_are_refused(doc: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        parse_json(doc, field="properties")


def test_json_size_is_limited() -> None:
    with pytest.raises(ValidationError, match="too large"):
        parse_json(json.dumps({"a": "x" * 70_000}), field="properties")
    with pytest.raises(ValidationError, match="too large"):
        check_json({"a": ["x" * 1000] * 100}, field="properties")


def test_json_keeps_order_and_plain_types() -> None:
    value = {"b": [1, (2, 3), {"z": None, "a": True}], "a": 1.5}
    checked = check_json(value, field="x")
    assert checked == {"b": [1, [2, 3], {"z": None, "a": True}], "a": 1.5}
    assert list(checked) == ["b", "a"]  # type: ignore[arg-type]
    assert json.dumps(checked) == json.dumps({"b": [1, [2, 3], {"z": None, "a": True}], "a": 1.5})


def test_non_string_keys_and_strange_objects_are_refused() -> None:
    with pytest.raises(ValidationError, match="key that is not text"):
        check_json({1: "a"}, field="x")
    with pytest.raises(ValidationError, match="cannot represent"):
        check_json({"a": object()}, field="x")


def test_invalid_utf8_says_where() -> None:
    with pytest.raises(ValidationError, match="not UTF-8 text .*position 3") as info:
        decode_utf8(b"abc\xff\xfe", field="file", label="upload")
    assert info.value.field == "file"
    assert decode_utf8("\ufeffname".encode(), field="file") == "name"


def test_storable_json_never_refuses_and_is_always_storable() -> None:
    deep: object = 1
    for _ in range(5_000):
        deep = [deep]
    value = {
        "nul": "a\x00b",
        "surrogate": "\udc80",
        "nan": math.nan,
        "big": 10**5000,
        "deep": deep,
        "obj": object,
        ("tuple", "key"): 1,
    }
    stored = storable_json(value)
    text = json.dumps(stored, allow_nan=False)
    text.encode("utf-8")  # no surrogate left
    assert "\\u0000" not in text
    assert stored["nul"] == "a\ufffdb"  # type: ignore[index]
    assert stored["nan"] is None  # type: ignore[index]
    assert json_text_depth(text) <= MAX_JSON_DEPTH


def test_storable_text_replaces_what_cannot_be_stored_and_never_refuses() -> None:
    assert (
        storable_text("Mozilla\x00/5.0\ud800\n(X11)", 200) == "Mozilla\ufffd/5.0\ufffd\ufffd(X11)"
    )
    assert storable_text("a\r\nb\x1bc\td", 200, multiline=True) == "a\nb\ufffdc\td"
    assert storable_text(None, 10) == ""
    assert storable_text("x" * 50, 10) == "x" * 10
