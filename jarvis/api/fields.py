"""Field errors named as the client sent them.

A service names the field of a :class:`~jarvis.errors.ValidationError` as its own parameter
("query", "budget"); where a route calls it something else on the wire (``?q=``,
``monthly_budget_usd``), the problem+json should name what the client sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from jarvis.errors import ValidationError


@contextmanager
def fields_named(**wire_names: str) -> Iterator[None]:
    """Re-raise a :class:`ValidationError` on ``service_name`` as one on ``wire_name``
    (``with fields_named(query="q"): ...``)."""
    try:
        yield
    except ValidationError as exc:
        if exc.field is not None and exc.field in wire_names:
            raise ValidationError(str(exc), field=wire_names[exc.field]) from exc
        raise
