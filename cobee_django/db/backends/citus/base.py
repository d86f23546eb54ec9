"""Django's PostgreSQL backend, with test databases made on every node of a Citus cluster.

Two differences from Django's own backend, both only when the database has the ``citus``
extension: test databases are made on every node (:mod:`.creation`), and aggregate queries over
tenant models group by every selected column, since their primary key is ``(company, id)``
(:mod:`.features`). Point ``ENGINE`` at ``cobee_django.db.backends.citus`` whichever PostgreSQL
server ``DATABASE_URL`` names.
"""

from __future__ import annotations

from django.db.backends.postgresql import base

from .creation import DatabaseCreation
from .features import DatabaseFeatures


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class = DatabaseCreation
    features_class = DatabaseFeatures
