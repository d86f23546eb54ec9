"""A database that cannot be reached in time is a clean 503 with ``Retry-After``, never a 500.

What a client sees when the database is down, restarting or hung (cobee_django.db.faults decides
which errors those are; the middleware answers them):

- the classification, on real errors of real drivers: a closed port, a statement timeout, and the
  errors that are *not* faults (bad SQL, a duplicate key) staying what they are;
- an API request whose database is unreachable: a JSON 503, a constant body, ``Retry-After``,
  one audit record and one ``database_unavailable`` signal, and no tenant left bound;
- PgBouncer killed under a persistent connection, then restarted: 503s while it is down, and the
  same connection settings serving again within a bounded time once it is back; PgBouncer frozen
  (``kill -STOP``): a 503 at the client-side statement deadline, then service again once it runs
  (PostgreSQL runs, ``COBEE_REQUIRE_PGBOUNCER=1`` in CI).

The faults of a Citus cluster (a stopped worker, a frozen worker, a shard split racing a write) are
in tests/test_database_faults_citus.py, which needs a cluster of its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLWrapper
from django.http import HttpResponse
from django.urls import path

from cobee_django import signals, state
from cobee_django.db.faults import DEADLINE_GRACE, DatabaseFault, _classify
from cobee_django.middleware import DATABASE_UNAVAILABLE_MESSAGE
from cobee_django.models import Company
from cobee_django.testing import TenantAPIClient
from tests.conftest import on_postgres

READ = ["read:employees"]


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dead_wrapper(alias: str = "default") -> PostgreSQLWrapper:
    """A PostgreSQL connection to a closed port: what a stopped server or a killed pooler looks like."""
    return PostgreSQLWrapper(
        {
            **connections[alias].settings_dict,
            "ENGINE": "django.db.backends.postgresql",
            "HOST": "127.0.0.1",
            "PORT": closed_port(),
            "NAME": "faults",
            "USER": "postgres",
            "PASSWORD": "",
            "OPTIONS": {"connect_timeout": 2},
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "TIME_ZONE": None,
            "AUTOCOMMIT": True,
            "ATOMIC_REQUESTS": False,
        },
        alias=alias,
    )


@contextmanager
def default_connection(wrapper) -> Iterator[None]:
    original = connections["default"]
    connections["default"] = wrapper
    try:
        yield
    finally:
        wrapper.close()
        connections["default"] = original


def caught(run) -> DatabaseError:
    with pytest.raises(DatabaseError) as info:
        run()
    return info.value


@pytest.fixture
def unavailable_signals() -> Iterator[list[dict]]:
    """What ``database_unavailable`` receivers get during the test."""
    calls: list[dict] = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    signals.database_unavailable.connect(receiver)
    yield calls
    signals.database_unavailable.disconnect(receiver)


# A page that reads the database, and one whose query is a bug (tests pick them with mark.urls).
def _page(request):
    return HttpResponse(f"{Company.objects.count()} companies")


def _bug(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM cobee_no_such_table")
    return HttpResponse("unreachable")


urlpatterns = [path("page", _page), path("bug", _bug)]


# --- which errors are faults ------------------------------------------------------------------------


def test_a_closed_port_is_unreachable(django_db_blocker):
    wrapper = dead_wrapper()
    try:
        with django_db_blocker.unblock():
            error = caught(wrapper.ensure_connection)
    finally:
        wrapper.close()
    assert _classify(error) is DatabaseFault.UNREACHABLE


def test_bad_sql_and_duplicate_keys_are_not_faults(db):
    def bad_sql():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT * FROM cobee_no_such_table")

    # SQLite reports bad SQL as OperationalError, PostgreSQL as ProgrammingError: neither is a fault.
    assert _classify(caught(bad_sql)) is None
    company = Company.objects.create(name="Once")

    def duplicate():
        with transaction.atomic():
            Company.objects.create(pk=company.pk, name="Twice")

    error = caught(duplicate)
    assert isinstance(error, IntegrityError)
    assert _classify(error) is None
    assert _classify(ValueError("not a database error")) is None


def test_a_statement_timeout_is_a_timeout(db, require_postgres):
    def slow():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 50")
            cursor.execute("SELECT pg_sleep(2)")

    started = time.monotonic()
    error = caught(slow)
    assert time.monotonic() - started < 1.5
    assert _classify(error) is DatabaseFault.TIMEOUT


# --- what the client gets ---------------------------------------------------------------------------


def assert_clean_503(response, *, json: bool = True) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == "30"  # UNAVAILABLE_RETRY_AFTER's default
    assert "no-store" in response["Cache-Control"]
    if json:
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": DATABASE_UNAVAILABLE_MESSAGE}
    else:
        assert response.content.decode() == DATABASE_UNAVAILABLE_MESSAGE


@pytest.mark.django_db
def test_an_api_request_to_an_unreachable_database_is_a_json_503(caplog, unavailable_signals):
    company = uuid.uuid4()
    client = TenantAPIClient.for_company(company, scopes=READ)
    with default_connection(dead_wrapper()):
        response = client.get(f"/api/v3/companies/{company}/employees")
    calls = unavailable_signals
    assert_clean_503(response)
    # Nothing of the error reaches the client: no host, no port, no driver's words.
    assert b"127.0.0.1" not in response.content and b"connect" not in response.content.lower()
    records = [r for r in caplog.records if getattr(r, "event", None) == "database_unavailable"]
    assert len(records) == 1
    record = records[0]
    assert record.levelname == "WARNING"
    assert record.reason == DatabaseFault.UNREACHABLE.value
    assert record.company_id == str(company)
    assert record.path == f"/api/v3/companies/{company}/employees"
    assert [call["reason"] for call in calls] == [DatabaseFault.UNREACHABLE.value]
    assert _classify(calls[0]["error"]) is DatabaseFault.UNREACHABLE
    # The request left nothing bound behind it.
    assert state.tenant_or_none() is None and not state.is_unscoped()


@pytest.mark.django_db
@pytest.mark.urls("tests.test_database_faults")
def test_a_page_without_credentials_gets_the_same_503_as_text(client, unavailable_signals):
    assert client.get("/page").status_code == 200
    with default_connection(dead_wrapper()):
        response = client.get("/page")
    assert_clean_503(response, json=False)
    assert [call["reason"] for call in unavailable_signals] == [DatabaseFault.UNREACHABLE.value]


@pytest.mark.django_db
@pytest.mark.urls("tests.test_database_faults")
def test_errors_that_are_not_faults_stay_500s(client, unavailable_signals):
    """A bug is not an outage: a broken query still reaches Django's 500 handling, unsignalled."""
    client.raise_request_exception = False
    assert client.get("/bug").status_code == 500
    assert unavailable_signals == []


# --- a pooler killed, a pooler frozen ----------------------------------------------------------------


@pytest.fixture
def pooler(transactional_db, tmp_path):
    """``start(port=None)``: a PgBouncer in front of the test database (stopped after the test)."""
    if not on_postgres():
        pytest.skip("needs DATABASE_URL=postgres://... (PgBouncer sits in front of PostgreSQL)")
    from tests.test_pgbouncer import PgBouncer, pgbouncer_binary

    binary = pgbouncer_binary()
    if binary is None:
        if os.environ.get("COBEE_REQUIRE_PGBOUNCER"):
            pytest.fail("COBEE_REQUIRE_PGBOUNCER is set but pgbouncer is not installed")
        pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    settings_dict = connection.settings_dict
    user = settings_dict.get("USER") or "postgres"
    started: list = []

    def start(port: int | None = None):
        directory = tmp_path / f"pgbouncer{len(started)}"
        directory.mkdir()
        bouncer = PgBouncer(binary, directory, settings_dict, [user], pool_size=2, port=port)
        started.append(bouncer)
        return bouncer

    yield start
    for bouncer in started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(bouncer.process.pid, signal.SIGCONT)
        bouncer.stop()


def through(bouncer) -> PostgreSQLWrapper:
    """A persistent connection (with Django's health checks) through ``bouncer``."""
    return type(connections["default"])(
        {
            **connection.settings_dict,
            "HOST": "127.0.0.1",
            "PORT": bouncer.port,
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
            "DISABLE_SERVER_SIDE_CURSORS": True,
        },
        alias="default",
    )


def test_a_killed_pooler_is_a_503_and_service_returns_when_it_is_back(pooler, caplog):
    company = Company.objects.create(name="Pooled").pk
    bouncer = pooler()
    client = TenantAPIClient.for_company(company, scopes=READ)
    url = f"/api/v3/companies/{company}/employees"
    with default_connection(through(bouncer)):
        assert client.get(url).status_code == 200
        bouncer.process.kill()  # SIGKILL: no goodbye to the clients
        bouncer.process.wait()
        started = time.monotonic()
        down = [client.get(url) for _ in range(3)]
        answered = time.monotonic() - started
        for response in down:
            assert_clean_503(response)
        assert answered < 5
        bouncer = pooler(port=bouncer.port)
        back = time.monotonic()
        response = client.get(url)
        recovered = time.monotonic() - back
        assert response.status_code == 200, response.content
        # The first request after the restart is served: the broken connection was dropped.
        assert recovered < 1.0
        print(f"\nkilled pooler: 3 answers 503 in {answered:.3f} s, back in {recovered:.3f} s")
    reasons = {r.reason for r in caplog.records if getattr(r, "event", None) == "database_unavailable"}
    assert reasons == {DatabaseFault.UNREACHABLE.value}


def test_a_frozen_pooler_is_a_503_at_the_statement_deadline(pooler, caplog):
    """A hung pooler (or server) never reports ``statement_timeout``: the client-side deadline does."""
    company = Company.objects.create(name="Pooled").pk
    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{name}" SET statement_timeout = 1000')
    try:
        bouncer = pooler()
        client = TenantAPIClient.for_company(company, scopes=READ)
        url = f"/api/v3/companies/{company}/employees"
        with default_connection(through(bouncer)):
            assert client.get(url).status_code == 200  # the connection reads its 1 s timeout
            os.kill(bouncer.process.pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                response = client.get(url)
                waited = time.monotonic() - started
            finally:
                os.kill(bouncer.process.pid, signal.SIGCONT)
            assert_clean_503(response)
            assert 1.0 + DEADLINE_GRACE <= waited < 1.0 + DEADLINE_GRACE + 1.5
            back = time.monotonic()
            assert client.get(url).status_code == 200
            recovered = time.monotonic() - back
            assert recovered < 1.0
            print(f"\nfrozen pooler: 503 after {waited:.3f} s (statement_timeout 1 s), back in {recovered:.3f} s")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" RESET statement_timeout')
    reasons = [r.reason for r in caplog.records if getattr(r, "event", None) == "database_unavailable"]
    assert reasons == [DatabaseFault.TIMEOUT.value]


# --- bounded waits: what the engine sets, what the deployment check reports -------------------------


def citus_engine_wrapper(options: dict | None = None):
    from cobee_django.db.backends.citus.base import DatabaseWrapper

    settings_dict = {**dead_wrapper().settings_dict, "ENGINE": "cobee_django.db.backends.citus"}
    settings_dict["OPTIONS"] = options or {}
    return DatabaseWrapper(settings_dict, alias="bounded")


def test_the_engine_bounds_connecting_unless_options_say_otherwise(settings):
    assert citus_engine_wrapper().get_connection_params()["connect_timeout"] == 5
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "CONNECT_TIMEOUT": 2}
    assert citus_engine_wrapper().get_connection_params()["connect_timeout"] == 2
    assert citus_engine_wrapper({"connect_timeout": 9}).get_connection_params()["connect_timeout"] == 9


def test_the_engine_reads_the_statement_deadline_when_it_connects(db, require_postgres):
    from cobee_django.db.faults import DEADLINE_ATTR

    wrapper = type(connections["default"])(
        {**connection.settings_dict, "OPTIONS": {"options": "-c statement_timeout=1500"}}
    )
    try:
        wrapper.ensure_connection()
        assert getattr(wrapper, DEADLINE_ATTR) == 1.5 + DEADLINE_GRACE
    finally:
        wrapper.close()
    plain = type(connections["default"])({**connection.settings_dict, "OPTIONS": {}})
    try:
        plain.ensure_connection()
        assert getattr(plain, DEADLINE_ATTR) is None  # no statement_timeout (migrations): no deadline
    finally:
        plain.close()


def test_an_unbounded_statement_timeout_is_reported_by_the_deployment_check(db, require_postgres):
    from cobee_django.db.checks import check_statement_timeout

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
        assert [m.id for m in check_statement_timeout(databases=["default"])] == ["cobee_django.W060"]
        cursor.execute("SET LOCAL statement_timeout = '5s'")
        assert check_statement_timeout(databases=["default"]) == []
    assert check_statement_timeout() == []  # a database check: only for the databases named
