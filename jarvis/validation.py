"""One rule for the text and JSON people (and models) hand to Jarvis (pure, no I/O).

Every service that takes a user-supplied string passes it through :func:`clean_text` (or its
one-line form :func:`clean_line`) before using it; every JSON document a user or a model supplies
goes through :func:`parse_json` (text) or :func:`check_json` (already parsed). Both raise
:class:`jarvis.errors.ValidationError` whose ``field`` names the form field, so pages show a
field error and the HTTP API answers 422.

The text rule:

* valid Unicode: no lone surrogate (``"\\ud800"`` cannot be encoded, stored or sent);
* no NUL, and no other control character (escape, bell, DEL, C1 controls), except newline and
  tab in multi-line text (``\\r\\n`` and ``\\r`` become ``\\n``); one-line text folds newlines and
  tabs into single spaces, as a form field would;
* surrounding whitespace stripped; not empty when required; at most ``max_chars`` characters.

The JSON rule: at most ``max_depth`` levels of nesting and ``max_bytes`` of UTF-8, objects with
string keys, finite numbers within 64 bits for integers, and strings that follow the text rule
(newlines and tabs allowed). The depth of JSON *text* is measured by a linear scan before it is
parsed, so a document nested 100,000 levels deep is refused without recursion.

:func:`storable_json` is the lenient twin for data Jarvis records but did not choose (a tool's
raw arguments, a web page's text): it never refuses, it replaces what PostgreSQL cannot store.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

from jarvis.errors import ValidationError

#: A JSON value as Jarvis stores it (``jsonb``).
JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

#: Nesting a person or a model has any use for; deeper is refused.
MAX_JSON_DEPTH = 20
#: Default size of one JSON document (properties, metadata, tool arguments).
MAX_JSON_BYTES = 64 * 1024
#: Object keys are names, not documents.
MAX_JSON_KEY_CHARS = 200
#: Integers outside 64 bits are refused (other systems cannot read them back).
MAX_JSON_INT = 2**63 - 1

_SURROGATE = re.compile("[\ud800-\udfff]")
#: C0 controls, DEL and C1 controls: what no text field should carry.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
#: The controls that are line structure rather than garbage.
_LINE_CONTROLS = frozenset("\n\t\r")
_WHITESPACE_RUN = re.compile(r"[ \t\r\n]+")
_NEWLINES = re.compile(r"\r\n?")


def _describe_char(char: str) -> str:
    names = {"\x00": "a NUL character", "\x1b": "an escape character", "\x07": "a bell character"}
    return names.get(char, f"a control character (U+{ord(char):04X})")


def _check_characters(text: str, *, field: str, label: str, allow_lines: bool) -> None:
    """Refuse lone surrogates and control characters (``\\n \\t \\r`` when ``allow_lines``)."""
    if _SURROGATE.search(text):
        raise ValidationError(
            f"The {label} contains characters that are not valid text (a lone surrogate).",
            field=field,
        )
    for match in _CONTROL.finditer(text):
        char = match.group()
        if allow_lines and char in _LINE_CONTROLS:
            continue
        raise ValidationError(f"The {label} contains {_describe_char(char)}.", field=field)


def clean_text(
    value: object,
    *,
    field: str,
    label: str | None = None,
    max_chars: int,
    multiline: bool = False,
    required: bool = True,
) -> str:
    """``value`` as clean text under the rule above, or a :class:`ValidationError`.

    ``label`` is how the message names the field ("title"); ``None`` or ``""`` in ``value``
    counts as empty. Messages never quote the value (it may be a secret).
    """
    label = label or field.replace("_", " ")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(f"The {label} must be text.", field=field)
    _check_characters(value, field=field, label=label, allow_lines=True)
    if multiline:
        text = _NEWLINES.sub("\n", value).strip()
    else:
        text = _WHITESPACE_RUN.sub(" ", value).strip()
    if not text:
        if required:
            raise ValidationError(f"Enter a {label}.", field=field)
        return ""
    if len(text) > max_chars:
        raise ValidationError(
            f"The {label} is too long ({len(text):,} characters; at most {max_chars:,}).",
            field=field,
        )
    return text


def clean_line(
    value: object,
    *,
    field: str,
    label: str | None = None,
    max_chars: int,
    required: bool = True,
) -> str:
    """One-line text (a name, a title, a search): :func:`clean_text` with newlines and tabs
    folded into single spaces."""
    return clean_text(
        value, field=field, label=label, max_chars=max_chars, multiline=False, required=required
    )


def check_text(value: str, *, field: str, label: str | None = None) -> str:
    """Only the character rule (valid Unicode, no control characters but newline and tab),
    nothing stripped or folded: for values kept exactly as typed (a secret value)."""
    _check_characters(value, field=field, label=label or field, allow_lines=True)
    return value


def is_valid_unicode(text: str) -> bool:
    """True when ``text`` can be encoded as UTF-8 (it holds no lone surrogate)."""
    return _SURROGATE.search(text) is None


def storable_text(value: object, max_chars: int, *, multiline: bool = False) -> str:
    """Text Jarvis records but nobody typed into a form (a browser's user agent, a model's
    answer, a tool's stray output): never refused; NUL, other control characters and lone
    surrogates become U+FFFD (newline and tab stay in ``multiline`` text); cut at
    ``max_chars``."""
    text = _SURROGATE.sub("\ufffd", "" if value is None else str(value)[: max_chars * 2])
    if multiline:
        text = _CONTROL.sub(
            lambda m: m.group() if m.group() in _LINE_CONTROLS else "\ufffd",
            _NEWLINES.sub("\n", text),
        )
    else:
        text = _CONTROL.sub("\ufffd", text)
    return text.strip()[:max_chars]


def clamp_int(value: object, low: int, high: int, *, field: str, label: str | None = None) -> int:
    """A whole number brought into ``low..high`` (how many results, how deep): anything that is
    not a finite number is refused rather than crashing ``int()``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationError(f"The {label or field} must be a whole number.", field=field)
    try:
        number = int(float(value)) if not isinstance(value, int) else value
    except (ValueError, OverflowError):
        raise ValidationError(
            f"The {label or field} must be a whole number.", field=field
        ) from None
    return max(low, min(high, number))


def finite_float(value: object, *, field: str, label: str | None = None) -> float:
    """A finite number (no NaN, no infinity), or a :class:`ValidationError`."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(f"The {label or field} must be a number.", field=field) from None
    if not math.isfinite(number):
        raise ValidationError(f"The {label or field} must be a finite number.", field=field)
    return number


# -- JSON -----------------------------------------------------------------------------------------


def json_text_depth(text: str) -> int:
    """The deepest nesting of ``[`` / ``{`` in JSON text, found by one linear scan (brackets
    inside strings do not count). Cheap enough to run before ``json.loads``."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(
    text: str | bytes,
    *,
    field: str,
    label: str | None = None,
    max_depth: int = MAX_JSON_DEPTH,
    max_bytes: int = MAX_JSON_BYTES,
) -> JsonValue:
    """Parse JSON text a user or a model supplied, within the size and depth limits, and check
    what it holds (:func:`check_json`)."""
    label = label or field.replace("_", " ")
    if isinstance(text, bytes):
        text = decode_utf8(text, field=field, label=label)
    if not isinstance(text, str):
        raise ValidationError(f"The {label} must be JSON text.", field=field)
    _check_size(len(text.encode("utf-8", "surrogatepass")), max_bytes, field, label)
    if json_text_depth(text) > max_depth:
        raise _too_deep(field, label, max_depth)
    try:
        value = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, and ints longer than Python reads
        raise ValidationError(f"The {label} is not valid JSON.", field=field) from exc
    return check_json(value, field=field, label=label, max_depth=max_depth, max_bytes=max_bytes)


def check_json(
    value: object,
    *,
    field: str,
    label: str | None = None,
    max_depth: int = MAX_JSON_DEPTH,
    max_bytes: int = MAX_JSON_BYTES,
) -> JsonValue:
    """``value`` (parsed JSON, or Python data headed for a ``jsonb`` column) checked without
    recursion: nesting, size, key and string text, finite numbers. Returns it as plain JSON
    types (tuples become lists)."""
    label = label or field.replace("_", " ")
    budget = [max_bytes]

    def spend(n: int) -> None:
        budget[0] -= n
        if budget[0] < 0:
            _check_size(max_bytes + 1, max_bytes, field, label)

    def scalar(item: object) -> JsonValue:
        if item is None or isinstance(item, bool):
            spend(5)
            return item
        if isinstance(item, int):
            if abs(item) > MAX_JSON_INT:
                raise ValidationError(
                    f"The {label} holds a number too large to store.", field=field
                )
            spend(20)
            return item
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValidationError(
                    f"The {label} holds a number that is not finite (NaN or infinity).",
                    field=field,
                )
            spend(24)
            return item
        if isinstance(item, str):
            spend(len(item) + 2)
            _check_characters(item, field=field, label=label, allow_lines=True)
            return item
        raise ValidationError(
            f"The {label} holds a value JSON cannot represent ({type(item).__name__}).",
            field=field,
        )

    root: list[JsonValue] = []
    stack: list[tuple[_Container, str | None, object, int]] = [(root, None, value, 1)]
    while stack:
        target, key, item, depth = stack.pop()
        result: JsonValue
        if isinstance(item, Mapping):
            if depth > max_depth:
                raise _too_deep(field, label, max_depth)
            out: dict[str, JsonValue] = {}
            spend(2)
            for k, v in item.items():
                if not isinstance(k, str):
                    raise ValidationError(f"The {label} has a key that is not text.", field=field)
                if len(k) > MAX_JSON_KEY_CHARS:
                    raise ValidationError(
                        f"The {label} has a key longer than {MAX_JSON_KEY_CHARS} characters.",
                        field=field,
                    )
                _check_characters(k, field=field, label=label, allow_lines=False)
                spend(len(k) + 4)
                out[k] = None  # keeps the order of the keys
                stack.append((out, k, v, depth + 1))
            result = out
        elif isinstance(item, list | tuple):
            if depth > max_depth:
                raise _too_deep(field, label, max_depth)
            items: list[JsonValue] = []
            spend(2)
            # The stack pops the last first: push the children reversed to fill in order.
            stack.extend(reversed([(items, None, v, depth + 1) for v in item]))
            result = items
        else:
            result = scalar(item)
        _place(target, key, result)
    return root[0]


def decode_utf8(data: bytes, *, field: str, label: str | None = None) -> str:
    """Bytes of an upload as text: UTF-8 (a byte-order mark is dropped), or a clear error that
    says where the first bad byte is."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"The {label or field} is not UTF-8 text (invalid byte at position {exc.start:,}). "
            "Save it as UTF-8 and try again.",
            field=field,
        ) from None


def storable_json(value: object, *, max_depth: int = MAX_JSON_DEPTH) -> JsonValue:
    """``value`` as JSON PostgreSQL can store, never refusing: strings lose NUL characters and
    lone surrogates (replaced by U+FFFD), non-finite numbers become ``null``, integers beyond
    64 bits and other objects become text, nesting below ``max_depth`` becomes ``"…"``."""

    def text(s: str) -> str:
        if "\x00" in s or not is_valid_unicode(s):
            return _SURROGATE.sub("\ufffd", s.replace("\x00", "\ufffd"))
        return s

    def leaf(item: object) -> JsonValue:
        if item is None or isinstance(item, bool):
            return item
        if isinstance(item, int):
            return item if abs(item) <= MAX_JSON_INT else text(_int_text(item))
        if isinstance(item, float):
            return item if math.isfinite(item) else None
        if isinstance(item, str):
            return text(item)
        return text(str(item))

    root: list[JsonValue] = []
    stack: list[tuple[_Container, str | None, object, int]] = [(root, None, value, 1)]
    while stack:
        target, key, item, depth = stack.pop()
        result: JsonValue
        if isinstance(item, Mapping | list | tuple) and depth > max_depth:
            result = "…"
        elif isinstance(item, Mapping):
            out: dict[str, JsonValue] = {}
            for k, v in item.items():
                name = text(str(k))
                out[name] = None
                stack.append((out, name, v, depth + 1))
            result = out
        elif isinstance(item, list | tuple):
            items: list[JsonValue] = []
            stack.extend(reversed([(items, None, v, depth + 1) for v in item]))
            result = items
        else:
            result = leaf(item)
        _place(target, key, result)
    return root[0]


def _int_text(value: int) -> str:
    # str() of an integer beyond ~4,300 digits raises (CPython's conversion limit).
    return str(value) if value.bit_length() < 10_000 else "<integer too large>"


#: A JSON container being filled while a document is walked.
_Container = list[JsonValue] | dict[str, JsonValue]


def _place(target: _Container, key: str | None, value: JsonValue) -> None:
    if isinstance(target, dict):
        assert key is not None
        target[key] = value
    else:
        target.append(value)


def _check_size(size: int, max_bytes: int, field: str, label: str) -> None:
    if size > max_bytes:
        raise ValidationError(
            f"The {label} is too large (at most {max_bytes // 1024:,} KB).", field=field
        )


def _too_deep(field: str, label: str, max_depth: int) -> ValidationError:
    return ValidationError(
        f"The {label} is nested too deeply (at most {max_depth} levels).", field=field
    )
