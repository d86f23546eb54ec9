"""Django's PostgreSQL backend, with test databases made on every node of a Citus cluster.

Everything but test-database creation is Django's own backend, and on PostgreSQL without Citus
that is unchanged too: point ``ENGINE`` at ``cobee_django.db.backends.citus`` whichever server
``DATABASE_URL`` names.
"""

from __future__ import annotations

from django.db.backends.postgresql import base

from .creation import DatabaseCreation


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class = DatabaseCreation
