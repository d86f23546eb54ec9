"""Django's PostgreSQL backend, with test databases made on every node of a Citus cluster.

Three differences from Django's own backend, all only when the database has the ``citus``
extension: test databases are made on every node (:mod:`.creation`), aggregate queries over
tenant models group by every selected column, since their primary key is ``(company, id)``
(:mod:`.features`), and new tables that reference a reference table stay plain until distributed.
Point ``ENGINE`` at ``cobee_django.db.backends.citus`` whichever PostgreSQL server ``DATABASE_URL``
names.
"""

from __future__ import annotations

from django.db.backends.postgresql import base

from ..._catalog import on_citus
from .creation import DatabaseCreation
from .features import DatabaseFeatures

__all__: list[str] = []


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class = DatabaseCreation
    features_class = DatabaseFeatures

    def init_connection_state(self) -> None:
        super().init_connection_state()
        if on_citus(self):
            # A table created with a foreign key to a reference table stays a plain table (until its
            # DistributeTenantModel runs) instead of becoming a Citus-local one, which Citus could
            # then neither distribute (identity ids) nor protect with policies.
            with self.connection.cursor() as cursor:
                cursor.execute("SET citus.enable_local_reference_table_foreign_keys TO off")
