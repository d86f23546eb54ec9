"""Tasks the Celery tests send to a real worker (``celery -A testproject worker -I tests.testapp.celery_tasks``).

Each reports what the worker had bound while it ran, so the tests can compare it with what the
sender had bound. None touches the database unless a tenant is bound: with nothing bound, a tenant
model query raises before any SQL is sent.
"""

from __future__ import annotations

import os
from typing import Any

from cobee_django import state
from cobee_django.exceptions import NoTenantBound
from testproject.api.models import Employee
from testproject.celery import app


def bound() -> dict[str, Any]:
    """What the running task has bound, as JSON, plus the worker process id."""
    tenant = state.tenant_or_none()
    return {
        "companies": None if tenant is None else [str(c) for c in tenant.sorted_company_ids],
        "corporation": None if tenant is None or tenant.corporation_id is None else str(tenant.corporation_id),
        "unscoped": state.is_unscoped(),
        "pid": os.getpid(),
    }


@app.task(name="tests.whoami")
def whoami() -> dict[str, Any]:
    return bound()


@app.task(name="tests.query_employees")
def query_employees() -> dict[str, Any]:
    """Query a tenant model: fails closed (``NoTenantBound``) when nothing is bound."""
    try:
        count = Employee.objects.count()
    except NoTenantBound:
        return {**bound(), "error": "NoTenantBound"}
    return {**bound(), "count": count}


@app.task(name="tests.step")
def step(previous: list[Any] | None = None) -> list[Any]:
    """A chain, group or chord step: what came before, plus what this step had bound."""
    return [*(previous or []), bound()]


@app.task(name="tests.collect")
def collect(results: list[Any]) -> dict[str, Any]:
    """A chord's body: the header's results, plus what the body had bound."""
    return {"header": results, "body": bound()}


@app.task(name="tests.fail")
def fail() -> None:
    """Fails while a tenant is bound; the worker must still unbind it."""
    raise RuntimeError(f"failing on purpose with {bound()['companies']}")


@app.task(name="tests.retry_once", bind=True, max_retries=3)
def retry_once(self: Any) -> dict[str, Any]:
    """Retries once, then reports what the retried run had bound."""
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return {**bound(), "retries": self.request.retries}


@app.task(name="tests.ran")
def ran(marker: str) -> str:
    """Records that it ran (in the result backend's Redis); a rejected message never records."""
    import redis

    redis.Redis.from_url(app.conf.result_backend).set(f"cobee-test-ran:{marker}", "1", ex=600)
    return marker


#: What :func:`remember` saw, in eager tests (the same process).
SEEN: list[dict[str, Any]] = []


@app.task(name="tests.remember")
def remember() -> None:
    SEEN.append(bound())
