"""Row-level security behind PgBouncer in transaction mode: clients take turns on server connections.

Each test starts its own ``pgbouncer`` on a free port, with a configuration generated in a
temporary directory, in front of the test database, and connects as the plain runtime role of
``test_rls`` (row-level security holds it). Skipped with a reason when the binary is missing,
unless ``COBEE_REQUIRE_PGBOUNCER=1`` (CI sets it).

The threat: in transaction mode a server connection serves one client's transaction, then
another's. A tenant value that outlived its transaction would show the next client, on the same
server connection, the first client's rows. cobee_django only ever sets transaction-local values;
these tests prove that through a real pooler, and that the probe would see a leak if there were one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection, connections, transaction
from django.test import Client

from cobee_django.db.citus import is_citus
from cobee_django.state import for_company, for_corporation
from tests import test_rls
from tests.test_rls import CORP, A, B, C, as_caller, raw_names

# The plain PostgreSQL tests' fixtures: the same runtime role, data and token issuer.
runtime_role = test_rls.runtime_role
data = test_rls.data
rls_on = test_rls.rls_on
as_runtime = test_rls.as_runtime
issuer = test_rls.issuer

EXPECTED = {A: ["a1", "a2"], B: ["b1"], C: ["c1", "c2", "c3"]}


def pgbouncer_binary() -> str | None:
    """``pgbouncer`` on the PATH, or where Debian's package installs it."""
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgBouncer:
    """One pgbouncer process in transaction mode in front of the test database."""

    def __init__(
        self, binary: str, directory: Path, settings: dict, users: list[str], pool_size: int, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.database = settings["NAME"]
        config = directory / "pgbouncer.ini"
        auth_file = directory / "users.txt"
        # trust: the servers behind it decide; pgbouncer only needs to know the names.
        auth_file.write_text("".join(f'"{user}" ""\n' for user in users))
        config.write_text(
            "[databases]\n"
            f"{self.database} = host={settings.get('HOST') or '127.0.0.1'} port={settings.get('PORT') or 5432} "
            f"dbname={self.database}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {auth_file}\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmin_pool_size = 0\nreserve_pool_size = 0\n"
            "max_client_conn = 200\nignore_startup_parameters = extra_float_digits,options\n"
        )
        # pgbouncer refuses to run as root; it reads its configuration before dropping privileges.
        command = [binary, *(["-u", "nobody"] if os.geteuid() == 0 else []), str(config)]
        self.log = directory / "pgbouncer.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pgbouncer did not listen on {self.port}: {self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def start_pgbouncer(test_rls_runtime, tmp_path) -> Iterator:
    """``start(pool_size)``: a pgbouncer for this test, stopped after it."""
    binary = pgbouncer_binary()
    if binary is None:
        if os.environ.get("COBEE_REQUIRE_PGBOUNCER"):
            pytest.fail("COBEE_REQUIRE_PGBOUNCER is set but pgbouncer is not installed")
        pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    started: list[PgBouncer] = []

    def start(pool_size: int) -> PgBouncer:
        directory = tmp_path / f"pgbouncer{len(started)}"
        directory.mkdir()
        bouncer = PgBouncer(binary, directory, connection.settings_dict, [test_rls_runtime], pool_size)
        started.append(bouncer)
        return bouncer

    yield start
    for bouncer in started:
        bouncer.stop()


@pytest.fixture
def test_rls_runtime(data, rls_on, runtime_role) -> str:
    """The runtime role, with three companies' teams written and row-level security on."""
    return runtime_role


@contextmanager
def through(bouncer: PgBouncer, role: str) -> Iterator:
    """Make ``connections["default"]`` a client of ``bouncer`` as ``role`` (kept across requests)."""
    original = connections["default"]
    client = original.__class__(
        {
            **original.settings_dict,
            "HOST": "127.0.0.1",
            "PORT": bouncer.port,
            "USER": role,
            "PASSWORD": "",
            "CONN_MAX_AGE": 600,
            # Transaction pooling cannot keep a cursor open across transactions (Django's docs say so).
            "DISABLE_SERVER_SIDE_CURSORS": True,
        }
    )
    connections["default"] = client
    try:
        yield client
    finally:
        client.close()
        connections["default"] = original


def server_state() -> tuple[int, str | None, str | None]:
    """The server backend behind this client's next transaction, and our settings as it holds them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_backend_pid(), current_setting('cobee.company_ids', true), "
            "current_setting('cobee.rls_bypass', true)"
        )
        return cursor.fetchone()


def test_many_threads_bound_to_different_companies_share_two_server_connections(start_pgbouncer, test_rls_runtime):
    bouncer = start_pgbouncer(pool_size=2)
    threads_per_company, rounds = 3, 20
    barrier = threading.Barrier(threads_per_company * 3 + 1, timeout=60)
    wrong: list[str] = []
    pids: set[int] = set()

    def worker(company) -> None:
        try:
            with through(bouncer, test_rls_runtime):
                barrier.wait()
                for index in range(rounds):
                    with for_company(company):
                        names = raw_names()
                        with transaction.atomic():
                            in_transaction = raw_names()
                            pids.add(server_state()[0])
                    unbound = raw_names()  # between two bound transactions, on whichever server is free
                    for what, got, want in (
                        ("autocommit", names, EXPECTED[company]),
                        ("atomic", in_transaction, EXPECTED[company]),
                        ("unbound", unbound, []),
                    ):
                        if got != want:
                            wrong.append(f"{company} round {index} {what}: {got}")
        except Exception as exc:
            wrong.append(f"{company}: {exc!r}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(c,)) for c in (A, B, C) for _ in range(threads_per_company)]
    for thread in threads:
        thread.start()
    barrier.wait()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert 1 <= len(pids) <= 2  # nine clients took turns on two server connections


def test_no_tenant_value_survives_into_another_clients_transaction(start_pgbouncer, test_rls_runtime):
    bouncer = start_pgbouncer(pool_size=1)  # every client's transaction lands on the same server
    with through(bouncer, test_rls_runtime), for_company(A):
        assert raw_names() == ["a1", "a2"]
        with transaction.atomic():
            assert raw_names() == ["a1", "a2"]
            first_pid = server_state()[0]
    with through(bouncer, test_rls_runtime):  # another client, nothing bound
        pid, company_ids, bypass = server_state()
        assert pid == first_pid
        assert (company_ids or "", bypass or "") == ("", "")
        assert raw_names() == []
        with transaction.atomic():
            assert raw_names() == []
    with through(bouncer, test_rls_runtime), for_corporation(CORP):
        assert raw_names() == ["a1", "a2", "b1"]
        assert server_state()[0] == first_pid


def test_the_probe_sees_a_session_value_left_behind(start_pgbouncer, test_rls_runtime):
    """The leak the previous test rules out is real: a session-level SET does cross clients.

    cobee_django never issues one; this shows the probe would catch it, and why nothing else on a
    pooled connection may set ``cobee.*`` for the session (see docs/operations.md).
    """
    bouncer = start_pgbouncer(pool_size=1)
    with through(bouncer, test_rls_runtime) as client:
        client.ensure_connection()
        with client.connection.cursor() as cursor:  # the raw driver: around cobee_django
            cursor.execute(f"SET cobee.company_ids = '{{{A}}}'")
    # On Citus the session value stays on the coordinator (only SET LOCAL is sent to the workers),
    # so the shards see nothing; on one PostgreSQL server it leaks.
    leaked = [] if is_citus(connection) else ["a1", "a2"]
    with through(bouncer, test_rls_runtime) as client:
        assert raw_names() == leaked  # another client, nothing bound
        with client.connection.cursor() as cursor:
            cursor.execute("RESET cobee.company_ids")
        assert raw_names() == []


def test_requests_through_the_pooler_see_only_their_callers_rows(start_pgbouncer, test_rls_runtime, issuer):
    bouncer = start_pgbouncer(pool_size=1)
    api = Client()
    with through(bouncer, test_rls_runtime):
        seen = []
        for caller, expected in [
            (as_caller(issuer, A), ["a1", "a2"]),
            ({}, []),
            (as_caller(issuer, C), ["c1", "c2", "c3"]),
            (as_caller(issuer, B, CORP), ["a1", "a2", "b1"]),
            ({}, []),
        ]:
            body = api.get("/raw-teams", **caller).json()
            assert body["names"] == expected
            seen.append(body["pid"])
    assert len(set(seen)) == 1  # one server connection served every caller in turn
