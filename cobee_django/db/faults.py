"""Which database errors mean "unavailable for now", and why: the faults answered 503, not 500.

A request that meets one of these errors could not reach its data, through no fault of the client
or the code: the server is down, restarting or unreachable (a stopped Citus worker, a killed
PgBouncer), a statement ran out of time (``statement_timeout``, a connect timeout, a lock
timeout, a frozen worker), or a Citus shard moved under the statement (a shard split or move that
raced it). Retrying later can succeed, so the answer is 503 with ``Retry-After``
(:class:`~cobee_django.middleware.TenantMiddleware` answers it).

Everything else stays what it is: an integrity error (a duplicate key), a programming error (a
missing table, bad SQL), a data error. :func:`_classify` returns ``None`` for those, so they keep
their usual handling (a 500 the developer must fix, or the 4xx the view makes of them).

The classification reads the driver's SQLSTATE (psycopg 3 and psycopg2), the MySQL error number,
or SQLite's message; Django's wrapped error keeps the driver's error as its ``__cause__``.

**The statement deadline.** ``statement_timeout`` is enforced by the server, and a server can fail to
enforce it: a Citus coordinator whose statement waits on a frozen worker (``kill -STOP``, a hung VM)
cancels it by sending the worker a cancel request, and waits for the worker's answer, which never
comes until the worker runs again. :func:`_deadline_wrapper` (installed by the
``cobee_django.db.backends.citus`` engine) bounds the wait from the client side: a statement that
has not returned one second after the session's ``statement_timeout`` has its connection shut
down by a watchdog thread, and fails with :class:`StatementDeadlineExceeded` (a ``database_timeout``
fault). The connection is then closed, and the next request opens a fresh one. Sessions without a
``statement_timeout`` (migrations) get no deadline.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from django.db import utils

from ..exceptions import StatementDeadlineExceeded

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


def _classify(error: BaseException) -> DatabaseFault | None:
    """The fault ``error`` shows, or ``None`` when it is not one to answer with 503.

    Only Django's ``OperationalError``, ``InterfaceError`` and ``InternalError`` (the last for
    Citus's shard errors) can be faults; integrity, programming and data errors never are.
    """
    if isinstance(error, StatementDeadlineExceeded):
        return DatabaseFault.TIMEOUT
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


# --- the statement deadline --------------------------------------------------------------------------

#: How long past ``statement_timeout`` the server may take to report its own timeout.
DEADLINE_GRACE = 1.0
#: The wrapper attribute holding a connection's deadline in seconds (``None``: no deadline).
DEADLINE_ATTR = "cobee_statement_deadline"


class _Watchdog:
    """One daemon thread that shuts down the socket of each statement still running at its deadline."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._running: dict[int, int] = {}  # ticket -> socket file descriptor
        self._fired: set[int] = set()
        self._tickets = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, fd: int, seconds: float) -> int:
        with self._lock:
            ticket = next(self._tickets)
            self._running[ticket] = fd
            deadline = time.monotonic() + seconds
            # Wake the thread only when this deadline comes first: deadlines are mostly later than
            # the earliest one it already waits for, so most statements cost no context switch.
            wake = not self._heap or deadline < self._heap[0][0]
            heapq.heappush(self._heap, (deadline, ticket))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cobee-statement-deadline", daemon=True)
                self._thread.start()
            if wake:
                self._lock.notify()
            return ticket

    def done(self, ticket: int) -> bool:
        """Stop watching ``ticket``; whether its deadline had fired."""
        with self._lock:
            self._running.pop(ticket, None)
            if ticket in self._fired:
                self._fired.discard(ticket)
                return True
            return False

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._heap:
                    self._lock.wait()
                deadline, ticket = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                heapq.heappop(self._heap)
                fd = self._running.pop(ticket, None)
                if fd is None:
                    continue  # the statement returned in time
                self._fired.add(ticket)
                # Under the lock: the statement cannot finish, and its socket be reused, meanwhile.
                _shut_down(fd)


def _shut_down(fd: int) -> None:
    """Shut the connection down under the driver, whose blocked read then fails at once."""
    try:
        duplicate = socket.socket(fileno=socket.dup(fd))
    except OSError:
        return
    try:
        duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        duplicate.close()


_watchdog = _Watchdog()


def _deadline_wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """Run one statement under its connection's deadline (see the module docs); an execute wrapper."""
    connection = context["connection"]
    seconds: float | None = getattr(connection, DEADLINE_ATTR, None)
    if not seconds or connection.connection is None:
        return execute(sql, params, many, context)
    ticket = _watchdog.watch(connection.connection.fileno(), seconds)
    try:
        result = execute(sql, params, many, context)
    except utils.Error as error:
        if _watchdog.done(ticket):
            raise StatementDeadlineExceeded(
                f"no answer from the database within {seconds:g} s (statement_timeout and {DEADLINE_GRACE:g} s)"
            ) from error
        raise
    if _watchdog.done(ticket):
        # Answered just as the deadline fired: the result stands; Django closes the connection,
        # no longer usable, at the end of the request.
        connection.errors_occurred = True
    return result
