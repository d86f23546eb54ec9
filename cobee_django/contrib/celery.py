"""Celery: the bound tenant travels in the task message's headers, and the worker binds it.

Wire a Celery app once, where it is created (the ``celery`` extra installs Celery)::

    app = Celery("proj")
    cobee_django.contrib.celery.install(app)

Then, for every task of that app:

- publishing (``delay``, ``apply_async``, ``send_task``, a retry, or the next step of a chain,
  group or chord, which the worker publishes while the step before it is bound) adds the
  :data:`HEADER` header when a tenant is bound, and removes it when none is (nothing bound, or
  inside ``unscoped()``): the header says exactly what was bound when the message was sent;
- the worker binds the header's tenant around the task's body and unbinds it afterwards, whether
  the task succeeds, fails or retries, so the next task of the same worker process starts with
  nothing bound. A task sent without the header runs with nothing bound: a tenant model query in
  it raises ``NoTenantBound``;
- a header that is not exactly what this module writes is refused before the task runs: the
  message is rejected (not requeued) and one constant line naming the task id is logged.

Threat model: whoever can write to the broker can already run any task with any arguments, so
the header is not signed; it is parsed strictly so that a malformed or oversized value can never
widen or lift scoping (see the "Celery" page of the docs).

Periodic jobs fan out explicitly: :func:`fan_out_to_companies` sends one task per company of a
corporation, :func:`fan_out_to_every_company_unscoped` one per company of the database.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

# Absolute imports: this module is named after the package it wires.
import celery
from celery.exceptions import Reject
from celery.signals import before_task_publish, task_postrun, task_prerun
from celery.utils.imports import symbol_by_name
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from .. import state, tasks
from ..exceptions import MalformedTenantHeader, TenantError
from ..state import Tenant

__all__ = [
    "TenantTask",
    "eager",
    "fan_out_to_companies",
    "fan_out_to_every_company_unscoped",
    "install",
]

logger = logging.getLogger("cobee_django.celery")

#: The message header carrying the tenant's snapshot (``cobee_django.tasks._snapshot_of``).
HEADER = "cobee_tenant"

#: The line a worker logs when it refuses a message; constant, so it never echoes the header.
REJECTED_MESSAGE = "Rejected a task message with a malformed cobee_tenant header; the task did not run."


#: Logged instead when the task is not a :class:`TenantTask` (so nothing can reject its message).
UNBOUND_MESSAGE = "A task message with a malformed cobee_tenant header runs with nothing bound (not a TenantTask)."


def _log_fields(request: Any, event: str) -> dict[str, Any]:
    """The record's attributes, for structured handlers (as the audit events have)."""
    return {"event": event, "reason": "malformed_tenant_header", "task_id": request.id}


def _header_value() -> dict[str, Any] | None:
    tenant = state.tenant_or_none()
    return None if tenant is None else tasks._snapshot_of(tenant)


def _add_tenant_header(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Set (or remove) :data:`HEADER` on every message published in this process.

    Celery logs and ignores what a signal receiver raises, and publishes anyway: so the header is
    removed first, and a message whose tenant cannot be written goes out with none (the task then
    fails closed). :meth:`TenantTask.apply_async` raises in the sender for the same cases.
    """
    if headers is None:  # protocol 1 messages carry no headers of ours
        return
    headers.pop(HEADER, None)  # never a stale or forged value from options or a copied request
    value = _header_value()
    if value is not None:
        headers[HEADER] = value


# Connected on import, in every process that imports this module (publishers and workers alike).
before_task_publish.connect(_add_tenant_header, weak=False, dispatch_uid="cobee_django.celery.add_tenant_header")


def _tenant_of_request(request: Any) -> Tenant | None:
    """The tenant a task request carries (``None`` for none); raises ``MalformedTenantHeader``.

    In eager mode (``task_always_eager``, ``Task.apply()``) no message is published: the task runs
    in the caller's process and gets what a worker would have got, the caller's bound tenant.
    """
    if getattr(request, "is_eager", False):
        return state.tenant_or_none()
    value = getattr(request, HEADER, None)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise MalformedTenantHeader(REJECTED_MESSAGE)
    try:
        return tasks._tenant_from_snapshot(value)
    except TenantError as exc:
        raise MalformedTenantHeader(REJECTED_MESSAGE) from exc


@contextmanager
def _bound(tenant: Tenant | None) -> Iterator[None]:
    if tenant is None:
        # Nothing bound, explicitly: an eager task inside unscoped() must not inherit it.
        with state.deferred(_nothing):
            yield
    else:
        with state.for_tenant(tenant):
            yield


def _nothing() -> None:
    return None


#: Where the worker keeps a running task's binding, on the task's request (one per execution).
_BINDING = "_cobee_django_binding"


def _bind_for_task(task: Any = None, **_: Any) -> None:
    """Bind the request's tenant for the whole execution: the body, then its chain and callbacks.

    Connected to ``task_prerun``: the steps after a task (the rest of a chain, callbacks, a
    chord's body) are published after the body returns, and must carry the same tenant. A
    malformed header binds nothing here; :class:`TenantTask` then rejects the message.
    """
    request = task.request
    try:
        tenant = _tenant_of_request(request)
    except MalformedTenantHeader:
        tenant = None
        if not isinstance(task, TenantTask):
            logger.error("%s task_id=%s", UNBOUND_MESSAGE, request.id, extra=_log_fields(request, "task_unbound"))
    stack = ExitStack()
    stack.enter_context(_bound(tenant))
    setattr(request, _BINDING, stack)


def _unbind_after_task(task: Any = None, **_: Any) -> None:
    """Undo :func:`_bind_for_task`; connected to ``task_postrun``, which Celery sends in ``finally``."""
    stack = task.request.__dict__.pop(_BINDING, None)
    if stack is not None:
        stack.close()


task_prerun.connect(_bind_for_task, weak=False, dispatch_uid="cobee_django.celery.bind_for_task")
task_postrun.connect(_unbind_after_task, weak=False, dispatch_uid="cobee_django.celery.unbind_after_task")


class TenantTask(celery.Task):  # type: ignore[misc]  # Celery ships no type information
    """The base task class :func:`install` gives an app: binds the message's tenant around ``run``.

    Use it directly as ``Celery(..., task_cls="cobee_django.contrib.celery:TenantTask")``, or as a mixin
    of your own base class (``class MyTask(TenantTask): ...``).
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if request.called_directly:
            # A plain function call in the caller's code keeps the caller's tenant.
            return super().__call__(*args, **kwargs)
        try:
            tenant = _tenant_of_request(request)
        except MalformedTenantHeader:
            logger.error("%s task_id=%s", REJECTED_MESSAGE, request.id, extra=_log_fields(request, "task_rejected"))
            raise Reject(REJECTED_MESSAGE, requeue=False) from None
        with _bound(tenant):
            return self.run(*args, **kwargs)

    def apply_async(self, *args: Any, **kwargs: Any) -> Any:
        """Send the task; a tenant too large for one message raises here, in the sender."""
        _header_value()
        return super().apply_async(*args, **kwargs)

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """``delay()`` once the transaction commits, carrying the tenant bound now."""
        self.apply_async_on_commit(args, kwargs)

    def apply_async_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """``apply_async()`` once the transaction commits, carrying the tenant bound now.

        The commit may come after the request's binding has ended (``ATOMIC_REQUESTS``), so the
        tenant is taken when this is called, not when the message is sent.
        """
        _header_value()
        tenant = state.tenant_or_none()

        def send() -> None:
            with _bound(tenant):
                self.apply_async(*args, **kwargs)

        transaction.on_commit(send)


def install(app: celery.Celery) -> celery.Celery:
    """Make every task of ``app`` carry and bind the tenant; call it right after creating the app.

    It sets the app's base task class to :class:`TenantTask` (or to a subclass of both, if the
    app already has a custom ``task_cls``). Tasks created with an explicit ``base=`` must derive
    from ``app.Task`` or :class:`TenantTask`; a task that does not runs with nothing bound.
    """
    current = app.task_cls
    if isinstance(current, str):
        current = symbol_by_name(current)
    if isinstance(current, type) and issubclass(current, TenantTask):
        return app
    if "Task" in app.__dict__:
        raise ImproperlyConfigured(
            "cobee_django.contrib.celery.install(app) must run before the app's first task is defined."
        )
    if current is celery.Task:
        app.task_cls = TenantTask
    else:
        app.task_cls = type(f"Tenant{current.__name__}", (TenantTask, current), {"__module__": __name__})
    return app


@contextmanager
def eager(app: celery.Celery) -> Iterator[celery.Celery]:
    """Run ``app``'s tasks in the calling process for the block, errors raised: for unit tests.

    Each task gets what a worker would give it: the caller's bound tenant, or nothing (never the
    caller's ``unscoped()``). The same as the settings ``CELERY_TASK_ALWAYS_EAGER`` and
    ``CELERY_TASK_EAGER_PROPAGATES`` for a whole test run.
    """
    saved = {"task_always_eager": app.conf.task_always_eager, "task_eager_propagates": app.conf.task_eager_propagates}
    _configure(app, dict.fromkeys(saved, True))
    try:
        yield app
    finally:
        _configure(app, saved)


def _configure(app: celery.Celery, values: Mapping[str, Any]) -> None:
    # With a namespace (``config_from_object(..., namespace="CELERY")``) older Celery versions
    # read ``CELERY_TASK_ALWAYS_EAGER`` before ``task_always_eager``: set both spellings.
    changes = dict(values)
    if app.namespace:
        changes.update({f"{app.namespace}_{key}".upper(): value for key, value in values.items()})
    app.conf.update(changes)


def _send(
    task: celery.Task, company_id: uuid.UUID, args: Sequence[Any], kwargs: Mapping[str, Any] | None, **options: Any
) -> Any:
    with state.for_company(company_id):
        return task.apply_async(args=tuple(args), kwargs=dict(kwargs or {}), **options)


def fan_out_to_companies(
    task: celery.Task,
    corporation_id: uuid.UUID | str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    **options: Any,
) -> dict[uuid.UUID, Any]:
    """Send ``task`` once per company of ``corporation_id``, each message bound to its one company.

    Answers ``{company_id: AsyncResult}``. The companies are those membership knows now
    (``cobee_django.membership.companies_of``). Called while a tenant is bound, every company
    must be one that tenant reaches (a request cannot fan out to another corporation).
    """
    from ..membership import companies_of

    corporation = uuid.UUID(str(corporation_id)) if not isinstance(corporation_id, uuid.UUID) else corporation_id
    companies = sorted(companies_of(corporation))
    bound = state.tenant_or_none()
    if bound is not None and not set(companies) <= bound.company_ids:
        raise TenantError("The bound tenant does not reach every company of this corporation.")
    return {company: _send(task, company, args, kwargs, **options) for company in companies}


def fan_out_to_every_company_unscoped(
    task: celery.Task,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    **options: Any,
) -> dict[uuid.UUID, Any]:
    """Send ``task`` once per company in the database, each message bound to its one company.

    For periodic jobs of the whole service; it reads the company list unscoped, says so in a
    warning, and refuses to run while a tenant is bound (a request never reaches every company).
    """
    from ..models import Company

    if state.tenant_or_none() is not None:
        raise TenantError("fan_out_to_every_company_unscoped() cannot run while a tenant is bound.")
    with state.unscoped():
        companies = list(Company.objects.order_by("pk").values_list("pk", flat=True))
    logger.warning(
        "Fanning out task %s to every company (%d), unscoped: each message is bound to one company.",
        task.name,
        len(companies),
    )
    return {company: _send(task, company, args, kwargs, **options) for company in companies}
