"""Field rules shared by the forms, the agent's tools and the importer (pure functions).

Each cleaner returns the normalised value or raises :class:`ValueError` with a short reason
("name is empty"); callers wrap it in a :class:`jarvis.errors.ValidationError` or a rejected
import row.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

from jarvis.errors import ValidationError
from jarvis.validation import JsonValue, check_json, clean_text, parse_json

MAX_NAME = 300
MAX_TYPE = 100
MAX_DESCRIPTION = 4000
#: The JSON properties of one entity or relation.
MAX_PROPERTIES_BYTES = 16 * 1024
MAX_PROPERTIES_DEPTH = 10


def _reason(exc: ValidationError) -> ValueError:
    """The text rule's message in this module's style ("name contains a NUL character")."""
    return ValueError(str(exc).removeprefix("The ").rstrip("."))


def _text(value: object, what: str, *, multiline: bool = False, max_chars: int = 10**6) -> str:
    """The one text rule (:mod:`jarvis.validation`) with this module's :class:`ValueError`;
    numbers and other scalars of an import are taken as their text."""
    if value is not None and not isinstance(value, str):
        value = str(value)
    try:
        return clean_text(
            value, field=what, label=what, max_chars=max_chars, multiline=multiline, required=False
        )
    except ValidationError as exc:
        raise _reason(exc) from None


def clean_name(value: object, what: str = "name") -> str:
    """Whitespace collapsed; not empty, at most :data:`MAX_NAME` characters, clean text."""
    name = _text(value, what)
    if not name:
        raise ValueError(f"{what} is empty")
    if len(name) > MAX_NAME:
        raise ValueError(f"{what} is longer than {MAX_NAME} characters")
    return name


def clean_description(value: object) -> str:
    """Free text on several lines, at most :data:`MAX_DESCRIPTION` characters (may be empty)."""
    text = _text(value, "description", multiline=True)
    if len(text) > MAX_DESCRIPTION:
        raise ValueError(f"description is longer than {MAX_DESCRIPTION} characters")
    return text


def clean_type(value: object, default: str | None = None, what: str = "type") -> str:
    """Lower case, words joined by ``_`` ("Works at" -> ``works_at``); empty -> ``default``."""
    t = _text(value, what).lower().replace(" ", "_")
    if not t:
        if default is None:
            raise ValueError(f"{what} is empty")
        return default
    if len(t) > MAX_TYPE:
        raise ValueError(f"{what} is longer than {MAX_TYPE} characters")
    return t


def parse_properties(value: object) -> dict[str, JsonValue]:
    """A JSON object (given as a dict or as JSON text) within the size and depth limits, with
    clean text and finite numbers; empty -> ``{}``."""
    if value is None or value == "":
        return {}
    try:
        if isinstance(value, str):
            value = parse_json(
                value,
                field="properties",
                max_depth=MAX_PROPERTIES_DEPTH,
                max_bytes=MAX_PROPERTIES_BYTES,
            )
        if not isinstance(value, dict):
            raise ValueError("properties must be a JSON object")
        checked = check_json(
            {str(k): v for k, v in value.items()},
            field="properties",
            max_depth=MAX_PROPERTIES_DEPTH,
            max_bytes=MAX_PROPERTIES_BYTES,
        )
    except ValidationError as exc:
        raise _reason(exc) from None
    assert isinstance(checked, dict)
    return checked


def parse_weight(value: object) -> float:
    """A finite number; empty -> 1.0."""
    if value is None or value == "":
        return 1.0
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("weight is not a number")
    try:
        w = float(value)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"weight {str(value)[:40]!r} is not a number") from exc
    if not math.isfinite(w):
        raise ValueError("weight must be a finite number")
    return w


def parse_datetime(value: object) -> datetime | None:
    """An ISO date or timestamp (naive ones are UTC); empty -> None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).strip()[:64])
    except ValueError as exc:
        raise ValueError(f"{str(value)[:40]!r} is not a date (use YYYY-MM-DD)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def check_validity(valid_from: datetime | None, valid_to: datetime | None) -> None:
    """A validity period must end after it starts."""
    if valid_from and valid_to and valid_to <= valid_from:
        raise ValueError("valid_to is not after valid_from")
