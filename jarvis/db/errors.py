"""Driver errors, translated once into the :mod:`jarvis.errors` tree.

Services never see a SQLAlchemy or psycopg exception: the unit of work (and the few engine-level
helpers in :mod:`jarvis.db`) pass every database failure through :func:`translate`. The messages
name no host, socket path, DSN, statement or parameter: only what a user can act on.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa_exc

from jarvis.errors import (
    ConflictError,
    DatabaseError,
    DatabaseUnavailableError,
    JarvisError,
    ValidationError,
)

#: SQLSTATE classes (first two characters) that mean "the server is not there or went away".
_UNAVAILABLE_CLASSES = ("08", "57", "53")  # connection, operator intervention, resources


def _sqlstate(error: sa_exc.DBAPIError) -> str:
    orig = getattr(error, "orig", None)
    return str(getattr(orig, "sqlstate", "") or "")


def translate(error: BaseException) -> BaseException:
    """The Jarvis error for a driver error (``error`` itself when it is not one)."""
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return DatabaseUnavailableError()  # psycopg used directly (the embedded server, COPY)
    if isinstance(error, JarvisError) or not isinstance(error, sa_exc.SQLAlchemyError):
        return error
    if isinstance(error, sa_exc.DBAPIError):
        state = _sqlstate(error)
        if error.connection_invalidated or state[:2] in _UNAVAILABLE_CLASSES:
            return DatabaseUnavailableError()
        if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError) and not state:
            return DatabaseUnavailableError()
        if state == "23505":
            return ConflictError()
        if isinstance(error, sa_exc.IntegrityError):
            return ConflictError("That conflicts with existing data or refers to missing data.")
        if isinstance(error, sa_exc.DataError) or state[:2] == "22":
            return ValidationError("The input contains characters or values that cannot be stored.")
        if state == "42501":  # insufficient_privilege: row-level security refused the write
            return DatabaseError("The database refused that change.")
        if state == "40001" or state == "40P01":
            return DatabaseError("The database was busy with a conflicting change. Try again.")
    if isinstance(error, sa_exc.TimeoutError):  # the pool had no free connection in time
        return DatabaseUnavailableError("The database is busy. Try again in a moment.")
    return DatabaseError()


def is_unique_violation(error: BaseException) -> bool:
    """True for a duplicate key (a concurrent insert of the same natural key)."""
    return isinstance(error, sa_exc.DBAPIError) and _sqlstate(error) == "23505"
