"""cobee_django.contrib.celery against a real Celery worker and the Redis broker: solo, prefork and threads pools.

Each worker is a subprocess (``celery -A testproject worker``) with one process or thread
(``-c 1``), so "the next task on the same process" really is the same one: the tests compare
process ids.
It consumes a queue of its own, so concurrent test runs sharing a Redis database never take each
other's messages, and uses a SQLite file seeded with the demo data (the test database of this
process is invisible to it). Every wait is bounded, and the worker is stopped even on failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import chain, chord, group
from celery.signals import before_task_publish

from cobee_django import state
from cobee_django.contrib import celery as cobee_celery
from cobee_django.state import Tenant
from testproject.api import tasks as api_tasks
from testproject.api.seed import seed_id
from testproject.celery import app
from tests.testapp import celery_tasks

ROOT = Path(__file__).resolve().parent.parent

# Real worker processes: not in the default run (pytest -m worker).
pytestmark = pytest.mark.worker
#: How long any one result or log line may take; generous, since CI machines are shared.
TIMEOUT = 60

NORTE = seed_id("corporation", "grupo-norte")
DISTRIBUCION = seed_id("company", "norte-distribucion")
LOGISTICA = seed_id("company", "norte-logistica")


def _redis_or_skip(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception:
        if os.environ.get("COBEE_REQUIRE_REDIS"):
            pytest.fail(f"COBEE_REQUIRE_REDIS is set but Redis is not reachable at {url}")
        pytest.skip(f"needs Redis at {url}")


@pytest.fixture(scope="module")
def worker_db(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a worker: a migrated, seeded SQLite file and a var/ directory of its own."""
    _redis_or_skip(app.conf.broker_url)
    _redis_or_skip(app.conf.result_backend)
    base = tmp_path_factory.mktemp("celery-worker")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "testproject.settings",  # the tests' apps are not needed there
        "DATABASE_URL": f"sqlite:///{base / 'worker.sqlite3'}",
        "COBEE_DEMO_VAR_DIR": str(base),
        "CELERY_BROKER_URL": app.conf.broker_url,
        "CELERY_RESULT_BACKEND": app.conf.result_backend,
        "PYTHONPATH": str(ROOT),
    }
    for command in (["migrate", "--noinput", "-v0"], ["shell", "-c", "from testproject.api.seed import seed; seed()"]):
        subprocess.run(
            [sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, timeout=300, capture_output=True
        )
    env["WORKER_DB"] = str(base / "worker.sqlite3")
    return env


@dataclass
class Worker:
    pool: str
    queue: str
    log: Path
    database: str
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, text: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while text not in self.log_text():
            if self.process.poll() is not None:
                pytest.fail(f"the {self.pool} worker exited:\n{self.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} in the {self.pool} worker's log:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)


@pytest.fixture(scope="module", params=["solo", "prefork", "threads"])
def worker(request: pytest.FixtureRequest, worker_db: dict[str, str], tmp_path_factory) -> Iterator[Worker]:
    pool = request.param
    queue = f"cobee-test-{pool}-{uuid.uuid4().hex}"
    log = tmp_path_factory.mktemp(f"worker-{pool}") / "worker.log"
    command = [
        *(sys.executable, "-m", "celery", "-A", "testproject", "worker"),
        *("--pool", pool, "--concurrency", "1", "--prefetch-multiplier", "1", "--loglevel", "INFO"),
        *("--queues", queue, "--hostname", f"{queue}@%h", "--include", "tests.testapp.celery_tasks"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
    ]
    env = {**worker_db, "CELERY_TASK_DEFAULT_QUEUE": queue}
    saved_queue = app.conf.task_default_queue
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    started = Worker(pool, queue, log, worker_db["WORKER_DB"], process)
    try:
        use_queue(queue)
        started.wait_for_log("ready.")
        yield started
    finally:
        use_queue(saved_queue)
        _stop(process)


def use_queue(queue: str) -> None:
    # Both spellings: in older Celery versions (5.3) the namespaced setting from Django settings wins.
    app.conf.update(task_default_queue=queue, CELERY_TASK_DEFAULT_QUEUE=queue)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # warm shutdown
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the worker's own session: it and its children
            process.wait(timeout=10)


def get(result: Any) -> Any:
    return result.get(timeout=TIMEOUT)


def nothing_bound_next(worker_pid: int) -> None:
    """The next task, sent with nothing bound, runs in the same process with nothing bound."""
    after = get(celery_tasks.query_employees.delay())
    assert after["pid"] == worker_pid
    assert (after["companies"], after["unscoped"], after["error"]) == (None, False, "NoTenantBound")


# --- tests --------------------------------------------------------------------------------------


def test_a_task_runs_with_its_senders_company_and_the_next_one_with_nothing(worker):
    with state.for_company(DISTRIBUCION):
        scoped = get(celery_tasks.query_employees.delay())
    assert scoped["companies"] == [str(DISTRIBUCION)]
    assert scoped["count"] == 6  # the seed's employees of that company, and no other's
    nothing_bound_next(scoped["pid"])
    with state.unscoped():
        lifted = get(celery_tasks.query_employees.delay())
    assert (lifted["error"], lifted["unscoped"]) == ("NoTenantBound", False)  # unscoped() is never carried


def test_chains_groups_and_chords_carry_the_tenant(worker):
    tenant = Tenant(frozenset({DISTRIBUCION, LOGISTICA}), NORTE)
    expected = sorted([str(DISTRIBUCION), str(LOGISTICA)])
    with state.for_tenant(tenant):
        chained = chain(celery_tasks.step.s(), celery_tasks.step.s(), celery_tasks.step.s()).delay()
        grouped = group(celery_tasks.whoami.s() for _ in range(3)).delay()
        chorded = chord(group(celery_tasks.whoami.s() for _ in range(2)), celery_tasks.collect.s()).delay()
    # The steps after the first, and the chord's body, are published by the worker itself.
    steps = get(chained)
    assert [(s["companies"], s["corporation"]) for s in steps] == [(expected, str(NORTE))] * 3
    assert [r["companies"] for r in get(grouped)] == [expected] * 3
    result = get(chorded)
    assert [r["companies"] for r in result["header"]] == [expected] * 2
    assert result["body"]["companies"] == expected
    nothing_bound_next(result["body"]["pid"])


def test_a_chain_sent_with_nothing_bound_runs_with_nothing(worker):
    steps = get(chain(celery_tasks.step.s(), celery_tasks.step.s()).delay())
    assert [s["companies"] for s in steps] == [None, None]


def test_a_failing_task_unbinds_its_tenant(worker):
    with state.for_company(LOGISTICA):
        failing = celery_tasks.fail.delay()
        with pytest.raises(RuntimeError, match=str(LOGISTICA)):
            get(failing)
    pid = get(celery_tasks.whoami.delay())["pid"]
    nothing_bound_next(pid)


def test_a_retried_task_keeps_its_tenant_and_then_unbinds(worker):
    with state.for_company(LOGISTICA):
        retried = get(celery_tasks.retry_once.delay())
    assert (retried["companies"], retried["retries"]) == ([str(LOGISTICA)], 1)
    nothing_bound_next(retried["pid"])


FORGED = [
    "everything",
    {"v": 1, "company_ids": ["*"], "corporation_id": None},
    {"v": 2, "company_ids": [str(DISTRIBUCION)], "corporation_id": None},
    {"v": 1, "company_ids": [str(DISTRIBUCION).upper()], "corporation_id": None},
    {"v": 1, "company_ids": [str(uuid.uuid4()) for _ in range(1001)], "corporation_id": None},
    {"v": 1, "company_ids": [str(DISTRIBUCION)], "corporation_id": None, "unscoped": True},
    {"v": 1, "company_ids": [], "corporation_id": "SECRET-MARKER" * 500},
]


@contextlib.contextmanager
def forging() -> Iterator[None]:
    """Publish as someone writing to the broker directly would: our header receiver disconnected."""
    uid = "cobee_django.celery.add_tenant_header"
    before_task_publish.disconnect(dispatch_uid=uid)
    try:
        yield
    finally:
        before_task_publish.connect(cobee_celery._add_tenant_header, weak=False, dispatch_uid=uid)


def test_a_message_with_a_forged_header_is_rejected_and_never_runs(worker):
    import redis

    markers = [uuid.uuid4().hex for _ in FORGED]
    with forging():
        sent = [
            celery_tasks.ran.apply_async((marker,), headers={cobee_celery.HEADER: header})
            for marker, header in zip(markers, FORGED, strict=True)
        ]
    for result in sent:
        worker.wait_for_log(f"{cobee_celery.REJECTED_MESSAGE} task_id={result.id}")
    # The worker goes on: a well-formed message after them runs.
    with state.for_company(DISTRIBUCION):
        assert get(celery_tasks.whoami.delay())["companies"] == [str(DISTRIBUCION)]
    store = redis.Redis.from_url(app.conf.result_backend)
    assert [store.get(f"cobee-test-ran:{m}") for m in markers] == [None] * len(markers)
    assert all(r.state != "SUCCESS" for r in sent)
    assert "SECRET-MARKER" not in worker.log_text()


def test_the_payroll_report_is_built_for_the_senders_company(worker):
    with state.for_company(DISTRIBUCION):
        report = get(api_tasks.build_payroll_report.delay("2026-10"))
    with contextlib.closing(sqlite3.connect(worker.database)) as db:
        rows = db.execute(
            "SELECT employee_id, COUNT(*), SUM(amount_in_cents) FROM api_consumption"
            " WHERE company_id = ? AND payroll = ? GROUP BY employee_id",
            (DISTRIBUCION.hex, "2026-10"),
        ).fetchall()
    expected = {str(uuid.UUID(employee)): (count, total) for employee, count, total in rows}
    assert expected  # the seed has consumptions in that cycle
    assert report["companyId"] == str(DISTRIBUCION)
    assert {e["employeeId"]: (e["consumptions"], e["total"]["amountInCents"]) for e in report["employees"]} == expected
    assert report["total"]["amountInCents"] == sum(total for _, total in expected.values())


def test_fan_out_binds_each_task_to_its_one_company(worker, tenants):
    results = cobee_celery.fan_out_to_companies(celery_tasks.whoami, tenants.corp)
    answers = {company: get(result) for company, result in results.items()}
    assert {c: a["companies"] for c, a in answers.items()} == {
        tenants.a: [str(tenants.a)],
        tenants.b: [str(tenants.b)],
    }


def test_a_tenant_cannot_be_smuggled_through_the_options(worker):
    smuggled = {"v": 1, "company_ids": [str(DISTRIBUCION)], "corporation_id": None}
    result = get(celery_tasks.query_employees.apply_async(headers={cobee_celery.HEADER: smuggled}))
    assert (result["companies"], result["error"]) == (None, "NoTenantBound")
