"""Carry the bound tenant into background work: captured when queued, bound when run.

Nothing here depends on a task library. A snapshot is a small JSON-serialisable dict, so it
travels through Celery, RQ, Dramatiq or a database queue as a plain argument::

    # when queueing (inside a request)
    send_report.delay(report_id, **tasks.task_kwargs())

    # the task
    @app.task
    @tasks.tenant_task
    def send_report(report_id): ...  # runs with the request's tenant bound

For threads and executors in the same process, :func:`carry` wraps a callable instead.
The snapshot holds the company ids themselves (what the request could reach when it queued the
work), not the principal. A task queued with nothing bound, or inside ``unscoped()``, cannot
capture a tenant: that raises, so unscoped work stays explicit in the task's own code.

Celery users need none of this: :mod:`cobee_django.contrib.celery` carries the same snapshot in the task
message's headers, so the task's arguments stay the caller's own.

A snapshot comes back from a queue, which is input: :func:`_tenant_from_snapshot` parses it
strictly (a known version, canonical UUID strings, at most :data:`MAX_COMPANIES` companies).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from . import state
from .exceptions import TenantError
from .state import Tenant

__all__ = ["capture", "carry", "restore", "task_kwargs", "tenant_task"]

#: The keyword argument that carries the snapshot to a :func:`tenant_task`.
TENANT_KWARG = "cobee_tenant"

#: The version of the snapshot's shape; a snapshot without ``"v"`` (made before 0.2) is version 1.
SNAPSHOT_VERSION = 1

#: The most companies one snapshot may carry: a bound on what a queue message makes a worker parse.
MAX_COMPANIES = 1000

_SNAPSHOT_KEYS = frozenset({"v", "company_ids", "corporation_id"})
_MALFORMED = "Not a tenant snapshot made by cobee_django.tasks.capture()."

_P = ParamSpec("_P")
_R = TypeVar("_R")


def capture() -> dict[str, Any]:
    """A JSON-serialisable snapshot of the bound tenant; raises when none is bound."""
    tenant = state.require_scope()
    if not isinstance(tenant, state.Tenant):
        raise TenantError("Inside unscoped() there is no tenant to carry; call unscoped() in the task itself.")
    return _snapshot_of(tenant)


def _snapshot_of(tenant: Tenant) -> dict[str, Any]:
    """The JSON-serialisable snapshot of ``tenant`` (its company ids and corporation id)."""
    if len(tenant.company_ids) > MAX_COMPANIES:
        raise TenantError(f"A task can carry at most {MAX_COMPANIES} companies; fan the work out per company.")
    return {
        "v": SNAPSHOT_VERSION,
        "company_ids": [str(c) for c in tenant.sorted_company_ids],
        "corporation_id": str(tenant.corporation_id) if tenant.corporation_id else None,
    }


def _canonical_uuid(value: object) -> uuid.UUID:
    # Only the form _snapshot_of() writes: one spelling per id, so no two strings mean one company.
    if not isinstance(value, str) or len(value) != 36:
        raise ValueError
    parsed = uuid.UUID(value)
    if str(parsed) != value:
        raise ValueError
    return parsed


def _tenant_from_snapshot(snapshot: Mapping[str, Any]) -> Tenant:
    """The tenant a snapshot describes; anything but what :func:`_snapshot_of` writes raises ``TenantError``."""
    try:
        if not isinstance(snapshot, Mapping) or not set(snapshot) <= _SNAPSHOT_KEYS:
            raise TypeError
        version = snapshot.get("v", SNAPSHOT_VERSION)
        if type(version) is not int or version != SNAPSHOT_VERSION:
            raise ValueError
        ids = snapshot["company_ids"]
        if not isinstance(ids, list) or len(ids) > MAX_COMPANIES:
            raise TypeError
        companies = frozenset(_canonical_uuid(c) for c in ids)
        if len(companies) != len(ids):
            raise ValueError
        corporation = snapshot.get("corporation_id")
        return Tenant(companies, _canonical_uuid(corporation) if corporation is not None else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise TenantError(_MALFORMED) from exc


@contextmanager
def restore(snapshot: Mapping[str, Any]) -> Iterator[Tenant]:
    """Bind the tenant of ``snapshot`` for the duration of the block."""
    with state.for_tenant(_tenant_from_snapshot(snapshot)) as tenant:
        yield tenant


def task_kwargs(**kwargs: Any) -> dict[str, Any]:
    """``kwargs`` plus the snapshot of the bound tenant, to queue a :func:`tenant_task`."""
    return {**kwargs, TENANT_KWARG: capture()}


def tenant_task(func: Callable[_P, _R]) -> Callable[..., _R]:
    """Make ``func`` run with the tenant passed as ``cobee_tenant=`` (see :func:`task_kwargs`).

    Called without a snapshot, the task raises instead of running with nothing or everything.
    """

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> _R:
        snapshot = kwargs.pop(TENANT_KWARG, None)
        if snapshot is None:
            raise TenantError(f"{func.__qualname__} was queued without a tenant; queue it with task_kwargs().")
        with restore(snapshot):
            return func(*args, **kwargs)

    return run


def carry(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Capture the bound tenant now; bind it whenever (and wherever) the result is called."""
    snapshot = capture()

    @functools.wraps(func)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with restore(snapshot):
            return func(*args, **kwargs)

    return run
