"""Hand the bound companies to PostgreSQL before every statement, inside a transaction.

With ``COBEE_DJANGO["ROW_LEVEL_SECURITY"]`` on, every statement on a PostgreSQL connection passes
through :func:`execute_wrapper`, which reads the tenant bound *now* (:mod:`cobee_django.state`):

- a tenant is bound: ``cobee.company_ids`` is set to its companies with ``set_config(..., true)``,
  which lasts until the end of the transaction. Inside a transaction (``atomic()``,
  ``ATOMIC_REQUESTS``) it is set before each statement; in autocommit mode the statement is run
  inside a transaction opened for it. The value never outlives the transaction, so a pooled or
  reused connection cannot carry it into the next request;
- :func:`~cobee_django.state.unscoped` is active: ``cobee.rls_bypass`` is set to ``on`` instead,
  and one log record per transaction says where the bypass came from;
- nothing is bound: nothing is set, and the policies show no rows.

Before its first scoped statement on a database, the wrapper verifies that the connected role is
held by row-level security at all (not a superuser, no BYPASSRLS, not an owner of the tenant
tables) and refuses to run otherwise: a wall that is silently absent is worse than none.
"""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from .. import state
from ..conf import Problem, get_settings, reload_hooks
from ..exceptions import CobeeDjangoError
from .policy import BYPASS_SETTING, COMPANY_IDS_SETTING, role_problems

logger = logging.getLogger("cobee_django.rls")

# Also answers whether the bypass was already on in this transaction, so it is logged once per transaction.
_SET_SQL = (
    f"SELECT current_setting('{BYPASS_SETTING}', true), "
    f"set_config('{COMPANY_IDS_SETTING}', %s, true), set_config('{BYPASS_SETTING}', %s, true)"
)
_NOTHING = ("", "")
_NOT_CALLERS = ("django.", "cobee_django.", "contextlib", "asgiref.", "psycopg", "rest_framework.")
_BYPASS = ("", "on")

#: Role verdicts per database (alias and settings), so each process asks PostgreSQL once.
_verdicts: dict[tuple[str, ...], list[Problem]] = {}
_resolving: ContextVar[bool] = ContextVar("cobee_django_rls_resolving", default=False)
#: Connections on which a value may have been set in a transaction that is still open.
_dirty: weakref.WeakSet[BaseDatabaseWrapper] = weakref.WeakSet()


class RowLevelSecurityError(CobeeDjangoError):
    """Row-level security is on, but the database connection would not be held by it."""


def _reset() -> None:
    _verdicts.clear()


reload_hooks.append(_reset)


def _wanted() -> tuple[str, str] | None:
    """The settings this statement must run with; ``None`` when nothing is bound."""
    if _resolving.get():
        # A statement run while the tenant itself is being worked out (the middleware's resolver
        # reads the company registry): it belongs to no tenant, and asking again would recurse.
        return None
    token = _resolving.set(True)
    try:
        tenant = state.get_tenant()
        unscoped = tenant is None and state.is_unscoped()
    finally:
        _resolving.reset(token)
    if tenant is not None:
        return "{" + ",".join(sorted(str(c) for c in tenant.company_ids)) + "}", ""
    return _BYPASS if unscoped else None


def verify_role(connection: BaseDatabaseWrapper) -> None:
    """Raise :class:`RowLevelSecurityError` unless row-level security holds the connected role."""
    s = connection.settings_dict
    key = (connection.alias, *(str(s.get(k)) for k in ("NAME", "USER", "HOST", "PORT")))
    problems = _verdicts.get(key)
    if problems is None:
        problems = _verdicts[key] = role_problems(connection)
    if problems:
        first = problems[0]
        raise RowLevelSecurityError(f"{first.id}: {first.msg} {first.hint}")


def _set(connection: BaseDatabaseWrapper, values: tuple[str, str], sql: str) -> None:
    # The raw cursor: not a statement of the application, so not wrapped, logged or counted.
    with connection.connection.cursor() as cursor:
        cursor.execute(_SET_SQL, values)
        (previous_bypass, _, _) = cursor.fetchone()
    if values == _BYPASS and previous_bypass != "on":
        _audit_bypass(connection, sql)


def _caller() -> str:
    """Where the bypassing code is: the first frame outside Django, this package and the stdlib."""
    frame: Any = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(_NOT_CALLERS):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "unknown"


def _audit_bypass(connection: BaseDatabaseWrapper, sql: str) -> None:
    location = _caller()
    logger.info(
        "Row-level security bypassed by unscoped() at %s (database %s, %s).",
        location,
        connection.alias,
        sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?",
        extra={"event": "rls_bypass", "location": location, "database": connection.alias},
    )


def execute_wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """Run one statement with the bound tenant's companies set in PostgreSQL (see the module docs)."""
    if not get_settings().row_level_security:
        return execute(sql, params, many, context)
    connection: BaseDatabaseWrapper = context["connection"]
    wanted = _wanted()
    if wanted is not None and wanted != _BYPASS:
        verify_role(connection)
    if not connection.get_autocommit():
        # Inside a transaction someone opened. An earlier statement of it may have set another
        # tenant (or a savepoint rollback may have restored one), so set the value every time.
        if wanted is None and connection not in _dirty:
            return execute(sql, params, many, context)
        if connection not in _dirty:
            _dirty.add(connection)
            if connection.in_atomic_block:
                connection.on_commit(lambda: _dirty.discard(connection))
        _set(connection, wanted or _NOTHING, sql)
        return execute(sql, params, many, context)
    # Autocommit: every transaction that could hold a value has ended.
    _dirty.discard(connection)
    if wanted is None:
        return execute(sql, params, many, context)
    with transaction.atomic(using=connection.alias):
        _set(connection, wanted, sql)
        return execute(sql, params, many, context)


@receiver(connection_created)
def install(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Put :func:`execute_wrapper` first on every PostgreSQL connection (it checks the setting itself).

    First, so that wrappers a user pushes later (``connection.execute_wrapper()`` pops the last
    one) never remove it, and so that it is the outermost one: theirs run inside its transaction.
    """
    if connection.vendor == "postgresql" and execute_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, execute_wrapper)
