"""Which database errors mean "unavailable for now", and why: the faults answered 503, not 500.

A request that meets one of these errors could not reach its data, through no fault of the client
or the code: the server is down, restarting or unreachable (a stopped Citus worker, a killed
PgBouncer), a statement ran out of time (``statement_timeout``, a connect timeout, a lock
timeout, a frozen worker), or a Citus shard moved under the statement (a shard split or move that
raced it). Retrying later can succeed, so the answer is 503 with ``Retry-After``
(:class:`~cobee_django.middleware.TenantMiddleware` answers it).

Everything else stays what it is: an integrity error (a duplicate key), a programming error (a
missing table, bad SQL), a data error. :func:`classify` returns ``None`` for those, so they keep
their usual handling (a 500 the developer must fix, or the 4xx the view makes of them).

The classification reads the driver's SQLSTATE (psycopg 3 and psycopg2), the MySQL error number,
or SQLite's message; Django's wrapped error keeps the driver's error as its ``__cause__``.
"""

from __future__ import annotations

from enum import Enum

from django.db import utils

__all__ = ["DatabaseFault"]


class DatabaseFault(str, Enum):
    """Why a request could not reach the database (the ``database_unavailable`` reason codes)."""

    #: The server refused, dropped or never completed the connection, or is shutting down or
    #: starting up: a stopped PostgreSQL or Citus worker, a killed pooler, a restart.
    UNREACHABLE = "database_unreachable"
    #: A statement or a connection ran out of time: ``statement_timeout`` (a frozen worker),
    #: ``citus.node_connection_timeout``, the driver's ``connect_timeout``, ``lock_timeout``.
    TIMEOUT = "database_timeout"
    #: A Citus shard was split or moved while the statement was planned against it.
    SHARD_MOVED = "shard_moved"


# SQLSTATE class 08 is "connection exception" as a whole.
_UNREACHABLE_STATES = frozenset(
    {
        "57P01",  # admin_shutdown: the server is stopping (fast or immediate shutdown)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: the server is starting up or in recovery
        "53300",  # too_many_connections
    }
)
_TIMEOUT_STATES = frozenset(
    {
        "57014",  # query_canceled: statement_timeout (or a cancel request)
        "55P03",  # lock_not_available: lock_timeout
        "25P03",  # idle_in_transaction_session_timeout
    }
)
# Citus's errors for a statement whose shard a concurrent split or move removed; reproduced on
# Citus 13 by writing while a transaction isolating a company commits (tests/test_database_faults.py).
_SHARD_STATES = frozenset({"XX000", "40001"})
_SHARD_MESSAGES = (
    "could not find valid entry for shard",
    "shard for the given value does not exist",
    "could not find any shard placements for shard",
)
# MySQL client errors (CR_*) for a server that cannot be reached, and server timeouts.
_MYSQL_UNREACHABLE = frozenset({2002, 2003, 2005, 2006, 2013, 4031})
_MYSQL_TIMEOUT = frozenset({1205, 3024})


def _sqlstate(error: BaseException) -> str | None:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return state if isinstance(state, str) else None


def classify(error: BaseException) -> DatabaseFault | None:
    """The fault ``error`` shows, or ``None`` when it is not one to answer with 503.

    Only Django's ``OperationalError``, ``InterfaceError`` and ``InternalError`` (the last for
    Citus's shard errors) can be faults; integrity, programming and data errors never are.
    """
    if not isinstance(error, (utils.OperationalError, utils.InterfaceError, utils.InternalError)):
        return None
    cause = error.__cause__ if error.__cause__ is not None else error
    state = _sqlstate(cause)
    if state is not None:
        if state in _SHARD_STATES:
            message = str(cause)
            return DatabaseFault.SHARD_MOVED if any(text in message for text in _SHARD_MESSAGES) else None
        if state.startswith("08") or state in _UNREACHABLE_STATES:
            return DatabaseFault.UNREACHABLE
        if state in _TIMEOUT_STATES:
            return DatabaseFault.TIMEOUT
        return None
    if isinstance(error, utils.InternalError):
        return None
    module = type(cause).__module__
    if module.startswith("sqlite3"):
        # SQLite reports bad SQL as OperationalError too: only a busy database is a fault.
        message = str(cause)
        if "database is locked" in message or "database table is locked" in message:
            return DatabaseFault.TIMEOUT
        return DatabaseFault.UNREACHABLE if "unable to open database file" in message else None
    if module.startswith(("MySQLdb", "pymysql")):
        code = cause.args[0] if cause.args else None
        if code in _MYSQL_UNREACHABLE:
            return DatabaseFault.UNREACHABLE
        return DatabaseFault.TIMEOUT if code in _MYSQL_TIMEOUT else None
    if isinstance(error, utils.InterfaceError):
        return DatabaseFault.UNREACHABLE  # a closed or broken connection, whatever the driver
    if module.startswith(("psycopg", "psycopg2")):
        # No SQLSTATE: the driver itself failed to connect or lost the connection.
        return DatabaseFault.TIMEOUT if "timeout expired" in str(cause) else DatabaseFault.UNREACHABLE
    return None
