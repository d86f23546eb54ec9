"""Where a Citus database's nodes are (read from its metadata)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, NamedTuple

from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["Node", "coordinator_and_workers"]


class Node(NamedTuple):
    host: str
    port: int


def coordinator_and_workers(connection: BaseDatabaseWrapper) -> tuple[Node | None, list[Node]]:
    """The coordinator (when registered) and the primary workers of ``connection``'s database.

    ``(None, [])`` without Citus. When the configured database does not exist yet (Django's test
    runner does not need it to), the server's maintenance database is asked instead.
    """
    if connection.vendor != "postgresql":
        return None, []
    cursor: AbstractContextManager[Any]
    try:
        connection.ensure_connection()
        cursor = connection.connection.cursor()
    except OperationalError:
        cursor = connection._nodb_cursor()
    with cursor as c:
        c.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'")
        if c.fetchone() is None:
            return None, []
        c.execute(
            "SELECT groupid = 0, nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' "
            "AND isactive ORDER BY groupid, nodeid"
        )
        rows = c.fetchall()
    coordinator = next((Node(host, port) for is_coordinator, host, port in rows if is_coordinator), None)
    return coordinator, [Node(host, port) for is_coordinator, host, port in rows if not is_coordinator]
