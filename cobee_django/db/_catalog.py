"""Catalog reads the database walls share: whether a database is Citus, asked without loading the Citus module.

The Citus operations live in :mod:`cobee_django.db.citus`, which a project without Citus never
imports; row-level security and the backend only need to know whether the server has the
extension.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

__all__: list[str] = []


def fetch(connection: BaseDatabaseWrapper, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of a catalog read, through the raw DB-API cursor.

    Catalog reads are not the application's statements: they must not go through the row-level
    security wrapper, nor be logged or counted as the application's queries.
    """
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return list(cursor.fetchall())


def is_citus(connection: BaseDatabaseWrapper) -> bool:
    """True when ``connection`` is PostgreSQL with the ``citus`` extension installed."""
    if connection.vendor != "postgresql":
        return False
    return bool(fetch(connection, "SELECT 1 FROM pg_extension WHERE extname = 'citus'"))


def on_citus(connection: BaseDatabaseWrapper) -> bool:
    """:func:`is_citus`, asked once per connection object (the server does not change under it)."""
    known: bool | None = getattr(connection, "_cobee_is_citus", None)
    if known is None:
        known = is_citus(connection)
        connection._cobee_is_citus = known  # type: ignore[attr-defined]
    return known
