"""Field rules shared by the forms, the agent's tools and the importer (pure functions).

Each cleaner returns the normalised value or raises :class:`ValueError` with a short reason
("name is empty"); callers wrap it in a :class:`jarvis.errors.ValidationError` or a rejected
import row.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime

MAX_NAME = 300
MAX_TYPE = 100


def clean_name(value: object, what: str = "name") -> str:
    """Whitespace collapsed; not empty, at most :data:`MAX_NAME` characters."""
    name = " ".join(str(value or "").split())
    if not name:
        raise ValueError(f"{what} is empty")
    if len(name) > MAX_NAME:
        raise ValueError(f"{what} is longer than {MAX_NAME} characters")
    return name


def clean_type(value: object, default: str | None = None, what: str = "type") -> str:
    """Lower case, words joined by ``_`` ("Works at" -> ``works_at``); empty -> ``default``."""
    t = " ".join(str(value or "").split()).lower().replace(" ", "_")
    if not t:
        if default is None:
            raise ValueError(f"{what} is empty")
        return default
    if len(t) > MAX_TYPE:
        raise ValueError(f"{what} is longer than {MAX_TYPE} characters")
    return t


def parse_properties(value: object) -> dict[str, object]:
    """A JSON object (given as a dict or as JSON text); empty -> ``{}``."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError("properties is not valid JSON") from exc
    if not isinstance(value, dict):
        raise ValueError("properties must be a JSON object")
    return {str(k): v for k, v in value.items()}


def parse_weight(value: object) -> float:
    """A finite number; empty -> 1.0."""
    if value is None or value == "":
        return 1.0
    if not isinstance(value, str | int | float):
        raise ValueError(f"weight {value!r} is not a number")
    try:
        w = float(value)
    except ValueError as exc:
        raise ValueError(f"weight {value!r} is not a number") from exc
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
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a date (use YYYY-MM-DD)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def check_validity(valid_from: datetime | None, valid_to: datetime | None) -> None:
    """A validity period must end after it starts."""
    if valid_from and valid_to and valid_to <= valid_from:
        raise ValueError("valid_to is not after valid_from")
