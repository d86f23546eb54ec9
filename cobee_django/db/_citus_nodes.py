"""Where a Citus database's nodes are (read from its metadata)."""

from __future__ import annotations

from typing import NamedTuple

from django.db.backends.base.base import BaseDatabaseWrapper

from .citus import is_citus


class Node(NamedTuple):
    host: str
    port: int


def coordinator_and_workers(connection: BaseDatabaseWrapper) -> tuple[Node | None, list[Node]]:
    """The coordinator (when registered) and the primary workers of ``connection``'s database."""
    if not is_citus(connection):
        return None, []
    with connection.connection.cursor() as cursor:
        cursor.execute(
            "SELECT groupid = 0, nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' "
            "AND isactive ORDER BY groupid, nodeid"
        )
        rows = cursor.fetchall()
    coordinator = next((Node(host, port) for is_coordinator, host, port in rows if is_coordinator), None)
    return coordinator, [Node(host, port) for is_coordinator, host, port in rows if not is_coordinator]
