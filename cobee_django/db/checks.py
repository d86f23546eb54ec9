"""System checks for row-level security (ids E020 to E025, W020), Citus (E040 to E042, W040 to W042) and
database timeouts (W060).

E020 needs no database and runs with every check. E021 to E025 read the database's catalogs (E025
those of the shards, on the workers of a Citus cluster), so they are deployment checks:
``manage.py check --deploy --database default``, run with the settings the application serves
with. They stay out of ``migrate``, which runs as the tables' owner before the policies exist.
E021 and E022 are also enforced at run time, before the first scoped statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import connections

from ..conf import user_settings
from ._catalog import is_citus
from .policy import forced_tables, foreign_key_problems, role_problems, shard_problems, table_problems, tenant_models

__all__: list[str] = []


def _enabled() -> bool:
    return user_settings().get("ROW_LEVEL_SECURITY") is True


def _tenant_aliases(databases: Sequence[str] | None = None) -> list[str]:
    return [alias for alias in (databases or connections) if tenant_models(alias)]


@register(Tags.security)
def check_backend(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E020: row-level security is on, but tenant models live on a database other than PostgreSQL."""
    if not _enabled():
        return []
    return [
        Error(
            f"COBEE_DJANGO['ROW_LEVEL_SECURITY'] is on, but the database {alias!r} is {connections[alias].vendor}.",
            hint="Row-level security is a PostgreSQL feature. Turn the setting off on other databases: the ORM's "
            "tenant scoping still applies there.",
            id="cobee_django.E020",
        )
        for alias in _tenant_aliases()
        if connections[alias].vendor != "postgresql"
    ]


@register(Tags.database, Tags.security, deploy=True)
def check_database(
    app_configs: Sequence[Any] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E021 to E025: the connected role is held by row-level security and every tenant table is protected
    (on Citus, every shard of it too).

    W020, with the setting off: tables are protected anyway, so every role but a superuser sees nothing.
    """
    if not databases:
        return []
    messages: list[CheckMessage] = []
    for alias in _tenant_aliases(databases):
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue  # E020
        if not _enabled():
            forced = forced_tables(connection)
            if forced:
                messages.append(
                    Warning(
                        f"Row-level security is forced on {', '.join(forced)} in {alias!r}, but COBEE_DJANGO"
                        "['ROW_LEVEL_SECURITY'] is off: roles other than superusers see none of their rows.",
                        hint="Turn ROW_LEVEL_SECURITY on, or reverse the migrations that enabled it.",
                        id="cobee_django.W020",
                    )
                )
            continue
        problems = (
            *role_problems(connection),
            *table_problems(connection),
            *foreign_key_problems(connection),
            *shard_problems(connection),
        )
        for problem in problems:
            messages.append(Error(problem.msg, hint=problem.hint, id=problem.id))
    return messages


@register(Tags.database)
def check_citus(
    app_configs: Sequence[Any] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E040, W040, W041 and E041 on a Citus database (``migrate`` runs these for its database)."""
    from .citus import _distribution_problems, _undistributed_tables

    messages: list[CheckMessage] = []
    if not databases:
        return messages  # a database check: only for the databases named (check --database, migrate)
    for alias in _tenant_aliases(databases):
        connection = connections[alias]
        if connection.vendor != "postgresql" or not is_citus(connection):
            continue
        models = tenant_models(alias)
        for problem in (*_distribution_problems(models), *_undistributed_tables(connection, models)):
            kind = Warning if problem.id.split(".")[1].startswith("W") else Error
            messages.append(kind(problem.msg, hint=problem.hint, id=problem.id))
    return messages


@register(Tags.database, deploy=True)
def check_statement_timeout(
    app_configs: Sequence[Any] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W060: the serving connection's ``statement_timeout`` is unbounded (``check --deploy --database``).

    Without it, a statement waiting on a hung node (a frozen Citus worker whose connection the
    coordinator had cached) holds its request, and a server worker, until the node comes back.
    """
    messages: list[CheckMessage] = []
    for alias in _tenant_aliases(databases) if databases else []:
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout')")
            (value,) = cursor.fetchone()
        if value in ("0", "0ms"):
            messages.append(
                Warning(
                    f"statement_timeout is unbounded on the database {alias!r}: a statement waiting on a hung "
                    "server or Citus worker holds its request until the node answers.",
                    hint="Bound it for the role the application serves with, e.g. ALTER ROLE app SET "
                    "statement_timeout = '5s' (or OPTIONS {'options': '-c statement_timeout=5000'}), under "
                    "your HTTP server's request timeout; run migrations on a connection without it.",
                    id="cobee_django.W060",
                )
            )
    return messages


@register(Tags.database, Tags.security, deploy=True)
def check_shard_operations(
    app_configs: Sequence[Any] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W042, E042 on a Citus database: shard operations that would copy tenant shards as a role that
    row-level security holds, and so lose their rows (a deployment check)."""
    from .shards import shard_operation_problems

    messages: list[CheckMessage] = []
    for alias in _tenant_aliases(databases) if databases else []:
        connection = connections[alias]
        if connection.vendor != "postgresql" or not is_citus(connection):
            continue
        tables = [m._meta.db_table for m in tenant_models(alias)]
        for problem in shard_operation_problems(connection, tables):
            kind = Warning if problem.id.split(".")[1].startswith("W") else Error
            messages.append(kind(problem.msg, hint=problem.hint, id=problem.id))
    return messages
