"""Persistent connections keep the row-level security wall: the tenant never outlives its request.

Projects should keep connections open across requests (``CONN_MAX_AGE`` with Django's
``CONN_HEALTH_CHECKS``, or a pooler): opening one per request made the API several times slower on
Citus (docs/operations.md gives the figures). The threat that comes with it: one server connection
serves every tenant in turn, so a tenant value left on it would show the next request another
company's rows. These tests run many requests for different companies on **one** connection (one
backend pid), through Django's own end-of-request step (``close_old_connections``, which the test
client skips), including requests that fail halfway (a Python error after a scoped query, a database
error inside ``ATOMIC_REQUESTS``, a statement timeout answered 503), and check after each one that
the server holds no tenant value and the next caller sees exactly its rows.
"""

from __future__ import annotations

import pytest
from django.db import close_old_connections, connection, connections, transaction
from django.test import Client
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from cobee_django.authentication import JWTAuthentication
from tests import test_rls
from tests.rlsapp.views import RawTeams
from tests.test_rls import CORP, A, B, C, as_caller, setting_now

runtime_role = test_rls.runtime_role
data = test_rls.data
rls_on = test_rls.rls_on
as_runtime = test_rls.as_runtime
issuer = test_rls.issuer


class FailsMidway(APIView):
    """Reads the caller's teams (the tenant is set on the connection), then fails as ``how`` says."""

    authentication_classes = [JWTAuthentication]
    permission_classes = []

    def get(self, request, how):
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM rlsapp_team")
            cursor.fetchall()
            if how == "database-error":
                cursor.execute("SELECT 1 / 0")
            elif how == "timeout":
                with transaction.atomic():
                    cursor.execute("SET LOCAL statement_timeout = 50")
                    cursor.execute("SELECT pg_sleep(1)")
        if how == "python-error":
            raise RuntimeError("a bug after a scoped query")
        return Response({"unexpected": True})


urlpatterns = [path("raw-teams", RawTeams.as_view()), path("fail/<str:how>", FailsMidway.as_view())]


@pytest.fixture
def served(as_runtime, issuer, settings, monkeypatch):
    """The runtime role's connection, persistent with health checks, behind this module's views."""
    settings.ROOT_URLCONF = "tests.test_rls_persistent_connections"
    as_runtime.close()
    as_runtime.settings_dict["CONN_HEALTH_CHECKS"] = True
    # The handler reads CONN_MAX_AGE and ATOMIC_REQUESTS from the configured databases.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 600)
    monkeypatch.setitem(connections.settings["default"], "CONN_HEALTH_CHECKS", True)
    return as_runtime


def request(client: Client, path: str, caller: dict):
    """One request as a WSGI server runs it: Django's connection upkeep before and after."""
    close_old_connections()
    try:
        return client.get(path, **caller)
    finally:
        close_old_connections()


@pytest.mark.parametrize("atomic_requests", [False, True], ids=["autocommit", "ATOMIC_REQUESTS"])
def test_one_connection_serves_every_tenant_in_turn_and_keeps_none(served, issuer, monkeypatch, atomic_requests):
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", atomic_requests)
    client = Client(raise_request_exception=False)
    pids = set()
    for caller, failure, expected in [
        ((A,), None, ["a1", "a2"]),
        ((C,), "python-error", ["c1", "c2", "c3"]),
        ((B,), None, ["b1"]),
        ((A,), "database-error", ["a1", "a2"]),
        ((C,), None, ["c1", "c2", "c3"]),
        ((B, CORP), "timeout", ["a1", "a2", "b1"]),
        ((), None, []),
        ((B,), None, ["b1"]),
        ((A,), "python-error", ["a1", "a2"]),
        ((C,), None, ["c1", "c2", "c3"]),
    ]:
        if failure is not None:
            response = request(client, f"/fail/{failure}", as_caller(issuer, *caller))
            assert response.status_code == (503 if failure == "timeout" else 500)
        # After every request, failed ones included, the server holds no tenant value...
        served.ensure_connection()  # (opens it only before the first request: the pids say so)
        assert setting_now(served) in {("", ""), (None, None)}
        # ...and the next caller sees exactly its own rows, on the same server connection.
        response = request(client, "/raw-teams", as_caller(issuer, *caller))
        assert response.status_code == 200
        assert response.json()["names"] == expected
        pids.add(response.json()["pid"])
    # One backend served every request: the health checks found it usable after each failure.
    assert len(pids) == 1, pids
