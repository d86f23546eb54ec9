"""Test databases on a Citus cluster: the same database on every node, the workers registered in it.

Citus keeps its node list per database, and a database made on the coordinator alone has no
workers (its tables could not be distributed). So, when the configured database is Citus, making
the test database also makes it on each worker (with the extension) and registers the coordinator
and the workers in it; destroying it drops it on the workers too. On PostgreSQL without Citus this
is Django's creation, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db.backends.postgresql import creation

from ..._citus_nodes import Node, coordinator_and_workers

__all__: list[str] = []


class DatabaseCreation(creation.DatabaseCreation):
    _nodes: tuple[Node | None, list[Node]] | None = None

    def _create_test_db(self, verbosity: int, autoclobber: bool, keepdb: bool = False) -> str:
        # Read the cluster from the configured database before Django switches to the test one.
        coordinator, workers = self._nodes = coordinator_and_workers(self.connection)
        if workers and autoclobber and not keepdb:
            # Citus's maintenance daemon stays connected to every database: only FORCE drops one.
            self._drop(self._get_test_db_name())  # type: ignore[attr-defined]
        name: str = super()._create_test_db(verbosity, autoclobber, keepdb)  # type: ignore[misc]
        if not workers:
            return name
        for worker in workers:
            if verbosity >= 1:
                self.log(f"Creating test database {name!r} on Citus worker {worker.host}:{worker.port}...")
            with self._worker(worker, "postgres") as conn:
                conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
                exists = conn.fetchone()
                if exists and not keepdb:
                    conn.execute(f"DROP DATABASE {self.connection.ops.quote_name(name)} WITH (FORCE)")
                if not exists or not keepdb:
                    conn.execute(f"CREATE DATABASE {self.connection.ops.quote_name(name)}")
            with self._worker(worker, name) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
        settings = {**self.connection.settings_dict, "NAME": name}
        with self._worker(Node(settings["HOST"] or "localhost", int(settings["PORT"] or 5432)), name) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
            if coordinator is not None:
                conn.execute("SELECT citus_set_coordinator_host(%s, %s)", [coordinator.host, coordinator.port])
            for worker in workers:
                conn.execute(
                    "SELECT 1 FROM pg_dist_node WHERE nodename = %s AND nodeport = %s", [worker.host, worker.port]
                )
                if not conn.fetchone():
                    conn.execute("SELECT citus_add_node(%s, %s)", [worker.host, worker.port])
        return name

    def _destroy_test_db(self, test_database_name: str, verbosity: int) -> None:
        _, workers = self._nodes or (None, [])
        if not workers:
            super()._destroy_test_db(test_database_name, verbosity)  # type: ignore[misc]
            return
        self._drop(test_database_name)
        for worker in workers:
            with self._worker(worker, "postgres") as conn:
                conn.execute(
                    f"DROP DATABASE IF EXISTS {self.connection.ops.quote_name(test_database_name)} WITH (FORCE)"
                )

    def _drop(self, name: str) -> None:
        with self.connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {self.connection.ops.quote_name(name)} WITH (FORCE)")

    @contextmanager
    def _worker(self, node: Node, dbname: str) -> Iterator[Any]:
        """A cursor on ``dbname`` at ``node`` (autocommit), with the configured credentials."""
        settings = {**self.connection.settings_dict, "HOST": node.host, "PORT": node.port, "NAME": dbname}
        wrapper = type(self.connection)(settings, alias=f"{self.connection.alias}__citus_node")
        try:
            with wrapper.cursor() as cursor:
                yield cursor
        finally:
            wrapper.close()
