"""Django's PostgreSQL backend, with test databases made on every node of a Citus cluster.

Three differences from Django's own backend, all only when the database has the ``citus``
extension: test databases are made on every node (:mod:`.creation`), aggregate queries over
tenant models group by every selected column, since their primary key is ``(company, id)``
(:mod:`.features`), and new tables that reference a reference table stay plain until distributed.
Point ``ENGINE`` at ``cobee_django.db.backends.citus`` whichever PostgreSQL server ``DATABASE_URL``
names.

On every PostgreSQL server, connecting is bounded: libpq's ``connect_timeout`` and, on Citus,
``citus.node_connection_timeout`` (the coordinator's wait for a worker, 30 s by Citus's default) are
``COBEE_DJANGO["CONNECT_TIMEOUT"]`` (5 s) unless the database's ``OPTIONS`` set them, so that a hung
server or worker costs a request seconds, not half a minute (libpq waits forever by default).
Statements are bounded by ``statement_timeout``, which the project sets for its serving role (the
deployment check W060 reports it unbounded): a default here would also cut long migrations short.
Each connection reads it when it opens, and :func:`cobee_django.db.faults._deadline_wrapper` holds
every statement to it from the client side too, for the server that cannot (a coordinator waiting
on a frozen worker).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql import base

from ....conf import DEFAULTS, get_settings, user_settings
from ..._catalog import on_citus
from ...faults import DEADLINE_ATTR, DEADLINE_GRACE, _deadline_wrapper
from .creation import DatabaseCreation
from .features import DatabaseFeatures

__all__: list[str] = []


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class = DatabaseCreation
    features_class = DatabaseFeatures

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        setattr(self, DEADLINE_ATTR, None)
        self.execute_wrappers.append(_deadline_wrapper)

    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        params.setdefault("connect_timeout", _connect_timeout())
        return params

    def init_connection_state(self) -> None:
        super().init_connection_state()
        with self.connection.cursor() as cursor:
            # In milliseconds whatever unit it was set in; 0 (no timeout, e.g. for migrations): no deadline.
            cursor.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout'")
            row = cursor.fetchone()
        timeout_ms = int(row[0]) if row else 0
        setattr(self, DEADLINE_ATTR, timeout_ms / 1000 + DEADLINE_GRACE if timeout_ms > 0 else None)
        if on_citus(self):
            # A table created with a foreign key to a reference table stays a plain table (until its
            # DistributeTenantModel runs) instead of becoming a Citus-local one, which Citus could
            # then neither distribute (identity ids) nor protect with policies.
            sql = "SET citus.enable_local_reference_table_foreign_keys TO off"
            if "citus.node_connection_timeout" not in str(self.settings_dict["OPTIONS"].get("options", "")):
                # A frozen worker accepts the coordinator's TCP connection and never answers.
                sql += f"; SET citus.node_connection_timeout TO {_connect_timeout() * 1000}"
            with self.connection.cursor() as cursor:
                cursor.execute(sql)


def _connect_timeout() -> int:
    """``COBEE_DJANGO["CONNECT_TIMEOUT"]``; its default while another key is broken (the checks say which)."""
    try:
        return get_settings().connect_timeout
    except ImproperlyConfigured:
        value = user_settings().get("CONNECT_TIMEOUT")
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        return int(DEFAULTS["CONNECT_TIMEOUT"])
