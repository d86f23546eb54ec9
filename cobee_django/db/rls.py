"""Hand the bound companies to PostgreSQL before every statement, inside a transaction.

With ``COBEE_DJANGO["ROW_LEVEL_SECURITY"]`` on, every statement on a PostgreSQL connection passes
through :func:`execute_wrapper`, which reads the tenant bound *now* (:mod:`cobee_django.state`):

- a tenant is bound: ``cobee.company_ids`` is set to its companies with ``set_config(..., true)``,
  which lasts until the end of the transaction. Inside ``atomic()`` (or ``ATOMIC_REQUESTS``) it
  is set once per transaction and again whenever the bound tenant changes; in autocommit mode the
  statement runs inside a transaction opened for it. The value never outlives its transaction, so
  a pooled or reused connection cannot carry it into the next request;
- :func:`~cobee_django.state.unscoped` is active: ``cobee.rls_bypass`` is set to ``on`` instead,
  and each time it is set a log record says where the bypass came from;
- nothing is bound: nothing is set, and the policies show no rows.

On a Citus coordinator, ``set_config()`` would stay on the coordinator, and the shard queries run
on the workers would see nothing. There the values are set with ``SET LOCAL``, in the same
transaction as ``SET LOCAL citus.propagate_set_commands = 'local'``: Citus then sends them to every
worker connection of the transaction (opened before or after), and undoes them with it (or with the
savepoint that made them). They last exactly as long as on plain PostgreSQL.

Before its first scoped statement on a database, the wrapper verifies that the connected role is
held by row-level security at all (not a superuser, no BYPASSRLS, not an owner of the tenant
tables) and refuses to run otherwise: a wall that is silently absent is worse than none.
"""

from __future__ import annotations

import logging
import sys
import uuid
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from .. import state
from ..conf import Problem, get_settings, is_reloading, user_settings
from ..exceptions import RowLevelSecurityError
from ._catalog import is_citus
from .policy import BYPASS_SETTING, COMPANY_IDS_SETTING, role_problems

logger = logging.getLogger("cobee_django.rls")

_SET_SQL = f"SELECT set_config('{COMPANY_IDS_SETTING}', %s, true), set_config('{BYPASS_SETTING}', %s, true)"
_NOTHING = ("", "")
_NOT_CALLERS = ("django.", "cobee_django.", "contextlib", "asgiref.", "psycopg", "rest_framework.")
_BYPASS = ("", "on")
# Citus propagates SET LOCAL (not set_config) to the workers when asked to, for this transaction only.
_CITUS_SET_SQL = (
    "SET LOCAL citus.propagate_set_commands TO 'local'; "
    f"SET LOCAL {COMPANY_IDS_SETTING} TO {{}}; SET LOCAL {BYPASS_SETTING} TO {{}}"
)

#: Role verdicts per database (alias and settings), so each process asks PostgreSQL once.
_verdicts: dict[tuple[str, ...], list[Problem]] = {}
#: Connection objects already found safe (their settings do not change), to skip even the lookup.
_safe: weakref.WeakSet[BaseDatabaseWrapper] = weakref.WeakSet()
_resolving: ContextVar[bool] = ContextVar("cobee_django_rls_resolving", default=False)
#: Whether each connection's database is a Citus coordinator, asked once per physical connection.
_citus: weakref.WeakKeyDictionary[BaseDatabaseWrapper, bool] = weakref.WeakKeyDictionary()


def _reset() -> None:
    _verdicts.clear()
    _safe.clear()
    _citus.clear()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if is_reloading(setting):
        _reset()


__all__: list[str] = []


def _enabled() -> bool:
    try:
        return get_settings().row_level_security
    except ImproperlyConfigured:
        # Another key is broken (the checks say which): keep the wall as asked, block nothing else.
        return user_settings().get("ROW_LEVEL_SECURITY") is True


def _wanted() -> tuple[str, str] | None:
    """The settings this statement must run with; ``None`` when nothing is bound."""
    if _resolving.get():
        # A statement run while the tenant itself is being worked out (the middleware's resolver
        # reads the company registry): it belongs to no tenant, and asking again would recurse.
        return None
    token = _resolving.set(True)
    try:
        tenant = state.tenant_or_none()
        unscoped = tenant is None and state.is_unscoped()
    finally:
        _resolving.reset(token)
    if tenant is not None:
        return _array_literal(tenant.company_ids), ""
    return _BYPASS if unscoped else None


@lru_cache(maxsize=1024)
def _array_literal(company_ids: frozenset[uuid.UUID]) -> str:
    """``{id,id,...}``: the value ``cobee.company_ids`` holds (cached: the same tenants recur)."""
    return "{" + ",".join(sorted(str(c) for c in company_ids)) + "}"


def verify_role(connection: BaseDatabaseWrapper) -> None:
    """Raise :class:`RowLevelSecurityError` unless row-level security holds the connected role."""
    if connection in _safe:
        return
    s = connection.settings_dict
    key = (connection.alias, *(str(s.get(k)) for k in ("NAME", "USER", "HOST", "PORT")))
    problems = _verdicts.get(key)
    if problems is None:
        problems = _verdicts[key] = role_problems(connection)
    if problems:
        first = problems[0]
        raise RowLevelSecurityError(f"{first.id}: {first.msg} {first.hint}")
    _safe.add(connection)


class _InEffect:
    """A no-op ``on_commit`` hook registered with each ``set_config`` made inside ``atomic()``.

    PostgreSQL undoes ``set_config(..., true)`` with the savepoint or transaction that made it;
    Django drops ``on_commit`` hooks with the same savepoint or transaction. So the newest hook of
    this kind still registered on a connection holds the values in effect on the server.
    """

    __slots__ = ("values",)

    def __init__(self, values: tuple[str, str]) -> None:
        self.values = values

    def __call__(self) -> None:
        pass


def _in_effect(connection: BaseDatabaseWrapper) -> tuple[str, str] | None:
    """What our settings hold in the current ``atomic()`` transaction (``None``: never set in it)."""
    for hook in reversed(connection.run_on_commit):
        if len(hook) > 1 and isinstance(hook[1], _InEffect):
            return hook[1].values
    return None


def _literal(value: str) -> str:
    # The values are ours (uuids, "on" or empty), quoted anyway: SET takes no parameters.
    return "'" + value.replace("'", "''") + "'"


def _set(connection: BaseDatabaseWrapper, values: tuple[str, str], sql: str) -> None:
    # The raw cursor: not a statement of the application, so not wrapped, logged or counted.
    with connection.wrap_database_errors:
        citus = _citus.get(connection)
        if citus is None:
            citus = _citus[connection] = is_citus(connection)
        with connection.connection.cursor() as cursor:
            if citus:
                cursor.execute(_CITUS_SET_SQL.format(*(_literal(value) for value in values)))
            else:
                cursor.execute(_SET_SQL, values)
    if values == _BYPASS:
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
    if not _enabled():
        return execute(sql, params, many, context)
    connection: BaseDatabaseWrapper = context["connection"]
    wanted = _wanted()
    if wanted is not None and wanted != _BYPASS:
        verify_role(connection)
    if connection.in_atomic_block and connection.needs_rollback:
        return execute(sql, params, many, context)  # Django refuses it with its usual error
    if connection.in_atomic_block:
        # In a transaction someone opened: set the values when they differ from those in effect.
        current = _in_effect(connection)
        target = wanted or (None if current in (None, _NOTHING) else _NOTHING)
        if target is not None and target != current:
            _set(connection, target, sql)
            connection.on_commit(_InEffect(target))
        return execute(sql, params, many, context)
    if not connection.get_autocommit():
        # A transaction managed by hand (set_autocommit(False)): nothing tracks it, set every time.
        _set(connection, wanted or _NOTHING, sql)
        return execute(sql, params, many, context)
    if wanted is None:
        return execute(sql, params, many, context)
    # Autocommit: run the statement in a transaction of its own, which the value cannot outlive.
    if connections[connection.alias] is not connection:
        # atomic() can only name a connection by alias; it would open the transaction elsewhere.
        raise RowLevelSecurityError(
            f"A statement on a connection that is not connections[{connection.alias!r}] of this thread ran "
            "outside a transaction; run it inside atomic() on that connection."
        )
    with transaction.atomic(using=connection.alias):
        _set(connection, wanted, sql)
        return execute(sql, params, many, context)


@receiver(connection_created)
def install(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Put :func:`execute_wrapper` first on every PostgreSQL connection (it checks the setting itself).

    First, so that wrappers a user pushes later (``connection.execute_wrapper()`` pops the last
    one) never remove it, and so that it is the outermost one: theirs run inside its transaction.
    """
    if connection.vendor == "postgresql":
        _citus.pop(connection, None)  # a new physical connection: ask again, lazily
        if execute_wrapper not in connection.execute_wrappers:
            connection.execute_wrappers.insert(0, execute_wrapper)
