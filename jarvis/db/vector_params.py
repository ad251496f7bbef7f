"""Query vectors sent to PostgreSQL in binary (``halfvec``'s wire format), not as text.

``pgvector.sqlalchemy.HALFVEC`` binds a vector as its text literal: 256 ``str(float)`` calls in
Python and 256 ``strtof`` calls in the server per search — about 0.25 ms on an idle core and
the largest client-side cost of a memory search (benchmarks/memory_bench.py). :class:`HalfvecParam`
binds the same numbers as pgvector's binary ``halfvec`` (``HalfVector.to_binary``: the dimension,
a zero, then big-endian IEEE half floats), rounded once from Python's floats to half precision.

The parameter goes out with type oid 0 ("unknown"): the server infers ``halfvec`` from the
statement (``embedding <=> :query``, ``CAST(:query AS halfvec(256))``) and reads it with
``halfvec_recv``, so no per-connection type lookup is needed. Only values of the private
:class:`BinaryHalfvec` class use this dumper: nothing else the application sends changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from pgvector import HalfVector
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy.engine import Dialect
from sqlalchemy.types import UserDefinedType


class BinaryHalfvec:
    """A query vector on its way to the server (see the module)."""

    __slots__ = ("payload",)

    def __init__(self, values: Sequence[float]) -> None:
        self.payload = HalfVector(list(values)).to_binary()


class _BinaryHalfvecDumper(Dumper):
    format = Format.BINARY
    oid = 0  # unknown: the statement decides (halfvec)

    def dump(self, obj: Any) -> bytes:
        return bytes(obj.payload)


psycopg.adapters.register_dumper(BinaryHalfvec, _BinaryHalfvecDumper)


class HalfvecParam(UserDefinedType[Sequence[float]]):
    """A bind parameter type: a sequence of floats sent as a binary ``halfvec``."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:  # noqa: ARG002 (SQLAlchemy's signature)
        return "halfvec"

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any]:  # noqa: ARG002
        def process(value: Any) -> Any:
            return None if value is None else BinaryHalfvec(value)

        return process
