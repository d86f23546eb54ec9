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
import re
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

# Session-level values first (a SET or set_config(..., false) of someone's SQL outlives transactions), then ours.
_RESET_SET_SQL = (
    f"SELECT set_config('{COMPANY_IDS_SETTING}', '', false), set_config('{BYPASS_SETTING}', '', false), "
    f"set_config('{COMPANY_IDS_SETTING}', %s, true), set_config('{BYPASS_SETTING}', %s, true)"
)
_CITUS_RESET = f"RESET {COMPANY_IDS_SETTING}; RESET {BYPASS_SETTING}; "

#: The first words of the statements after which what the server holds for our settings is unknown:
#: they change settings (SET, RESET, DISCARD), undo them (ROLLBACK [TO SAVEPOINT], ABORT), end the
#: transaction they lived in (COMMIT, END, PREPARE TRANSACTION), or run code that may do any of these
#: (CALL, DO, EXECUTE).
_RESETTING_WORDS = frozenset(
    {"set", "reset", "discard", "rollback", "abort", "commit", "end", "prepare", "call", "do", "execute"}
)
_FIRST_WORD = re.compile(r"\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*\(*\s*([A-Za-z_]+)", re.DOTALL)
_DOLLAR_TAG = re.compile(r"\$[A-Za-z_]*\$")

#: Role verdicts per database (alias and settings), so each process asks PostgreSQL once.
_verdicts: dict[tuple[str, ...], list[Problem]] = {}
#: Connection objects already found safe (their settings do not change), to skip even the lookup.
_safe: weakref.WeakSet[BaseDatabaseWrapper] = weakref.WeakSet()
_resolving: ContextVar[bool] = ContextVar("cobee_django_rls_resolving", default=False)
#: Connections on which a statement may have changed our settings behind the wrapper's back.
_stale: weakref.WeakSet[BaseDatabaseWrapper] = weakref.WeakSet()
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


def _statements(sql: str) -> list[str]:
    """The first word (lower case) of each statement of ``sql``, ignoring quotes, comments and dollar quotes."""
    words: list[str] = []
    start, i, n = 0, 0, len(sql)
    while i < n:
        char = sql[i]
        if char in "'\"":
            end = sql.find(char, i + 1)
            while end != -1 and sql.startswith(char, end + 1):
                end = sql.find(char, end + 2)  # a doubled quote inside the literal
            i = n if end == -1 else end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end == -1 else end + 2
        elif char == "$" and (tag := _DOLLAR_TAG.match(sql, i)):
            end = sql.find(tag.group(), tag.end())
            i = n if end == -1 else end + len(tag.group())
        elif char == ";":
            first = _FIRST_WORD.match(sql, start, i)
            if first:
                words.append(first.group(1).lower())
            start = i = i + 1
        else:
            i += 1
    first = _FIRST_WORD.match(sql, start)
    if first:
        words.append(first.group(1).lower())
    return words


def may_reset(sql: str, *, bound: bool) -> bool:
    """True when ``sql`` may leave the server holding other values for our settings than the wrapper set.

    Cheap for the statements Django writes (one anchored match, one substring search); SQL with
    several statements is read statement by statement. With a tenant bound (or ``unscoped()``), SQL
    that runs more statements after one of these is refused: they would run with whatever that one
    left, before the wrapper could set the values again.
    """
    if ";" not in sql:
        first = _FIRST_WORD.match(sql)
        return bool(first and first.group(1).lower() in _RESETTING_WORDS) or "set_config" in sql.lower()
    words = _statements(sql)
    resetting = [word in _RESETTING_WORDS for word in words]
    if bound and any(resetting[:-1]):
        # Threat: the statements after a ROLLBACK TO SAVEPOINT or SET would run as another tenant.
        raise RowLevelSecurityError(
            "With row-level security on, run SET, RESET, DISCARD, ROLLBACK, COMMIT, CALL, DO and EXECUTE as "
            "statements of their own, not followed by others in the same execute()."
        )
    return any(resetting) or "set_config" in sql.lower()


def _set(connection: BaseDatabaseWrapper, values: tuple[str, str], sql: str, *, stale: bool = False) -> None:
    """Set our values for this transaction; ``stale``: first clear any session-level values someone set."""
    # The raw cursor: not a statement of the application, so not wrapped, logged or counted.
    with connection.wrap_database_errors:
        citus = _citus.get(connection)
        if citus is None:
            citus = _citus[connection] = is_citus(connection)
        with connection.connection.cursor() as cursor:
            if citus:
                statement = _CITUS_SET_SQL.format(*(_literal(value) for value in values))
                cursor.execute(_CITUS_RESET + statement if stale else statement)
            else:
                cursor.execute(_RESET_SET_SQL if stale else _SET_SQL, values)
    _stale.discard(connection)
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
    resets = may_reset(sql, bound=wanted is not None)
    try:
        return _run(execute, sql, params, many, context, connection, wanted)
    finally:
        if resets:
            # Whatever the server holds now is unknown: the next statement sets the values again.
            _stale.add(connection)


def _run(
    execute: Callable[..., Any],
    sql: str,
    params: Any,
    many: bool,
    context: dict[str, Any],
    connection: BaseDatabaseWrapper,
    wanted: tuple[str, str] | None,
) -> Any:
    stale = connection in _stale
    if connection.in_atomic_block and connection.needs_rollback:
        return execute(sql, params, many, context)  # Django refuses it with its usual error
    if connection.in_atomic_block:
        # In a transaction someone opened: set the values when they differ from those in effect
        # (or when a statement may have changed them behind our back).
        current = None if stale else _in_effect(connection)
        target = wanted or (None if current in (None, _NOTHING) and not stale else _NOTHING)
        if target is not None and (stale or target != current):
            _set(connection, target, sql, stale=stale)
            connection.on_commit(_InEffect(target))
        return execute(sql, params, many, context)
    if not connection.get_autocommit():
        # A transaction managed by hand (set_autocommit(False)): nothing tracks it, set every time.
        _set(connection, wanted or _NOTHING, sql, stale=stale)
        return execute(sql, params, many, context)
    if wanted is None:
        if stale:
            _set(connection, _NOTHING, sql, stale=True)  # autocommit: clears session-level values for good
        return execute(sql, params, many, context)
    # Autocommit: run the statement in a transaction of its own, which the value cannot outlive.
    if connections[connection.alias] is not connection:
        # atomic() can only name a connection by alias; it would open the transaction elsewhere.
        raise RowLevelSecurityError(
            f"A statement on a connection that is not connections[{connection.alias!r}] of this thread ran "
            "outside a transaction; run it inside atomic() on that connection."
        )
    with transaction.atomic(using=connection.alias):
        _set(connection, wanted, sql, stale=stale)
        return execute(sql, params, many, context)


@receiver(connection_created)
def install(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Put :func:`execute_wrapper` first on every PostgreSQL connection (it checks the setting itself).

    First, so that wrappers a user pushes later (``connection.execute_wrapper()`` pops the last
    one) never remove it, and so that it is the outermost one: theirs run inside its transaction.
    """
    if connection.vendor == "postgresql":
        _citus.pop(connection, None)  # a new physical connection: ask again, lazily
        _stale.discard(connection)  # a new session holds nobody's values
        if execute_wrapper not in connection.execute_wrappers:
            connection.execute_wrappers.insert(0, execute_wrapper)
