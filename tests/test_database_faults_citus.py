"""Faults of a real Citus cluster: a stopped worker, a frozen worker, a shard split racing writes.

Each test breaks one worker of the cluster that ``DATABASE_URL`` names and proves, with bounded
times, that:

- requests for companies whose shards live on the broken worker get a clean 503 with
  ``Retry-After`` (never a 500, never an unbounded wait);
- companies whose shards live on the healthy worker keep being served meanwhile;
- service comes back by itself once the worker runs again.

These tests **stop and freeze the cluster's workers** (``pg_ctl stop``, ``kill -STOP``), so they run
only when ``COBEE_CITUS_FAULTS=1`` says the cluster is theirs alone (``.ci/run`` starts a dedicated
one on its own port); every node is restarted or resumed in ``finally`` blocks. They need to run on
the cluster's machine, as root or as the nodes' owner. The figures measured are printed (run with
``-s`` to see them).

The database's ``statement_timeout`` is set to 2 s for the tests (what a project sets for its serving
role) and ``CONNECT_TIMEOUT`` to 2 s; Django connections are kept across requests in each thread,
as with persistent connections, so the coordinator holds cached connections to both workers.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from django.db import connection, connections
from django.db.models import F
from django.urls import path
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.response import Response

from cobee_django import signals, state
from cobee_django.db.citus import is_citus
from cobee_django.db.faults import DatabaseFault
from cobee_django.middleware import DATABASE_UNAVAILABLE_MESSAGE
from cobee_django.models import Company
from cobee_django.testing import TenantAPIClient
from testproject.api.models import Employee

pytestmark = pytest.mark.django_db(transaction=True)

READ = ["read:employees"]
STATEMENT_TIMEOUT = 2.0
CONNECT_TIMEOUT = 2
#: The longest a request for a broken worker's company may take: the statement timeout, the
#: client-side deadline's grace (1 s), and scheduling slack on a loaded 2-core CI machine.
BOUND = STATEMENT_TIMEOUT + 1.0 + 2.0


# --- the cluster -------------------------------------------------------------------------------------


def _fetch(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@dataclass
class Worker:
    """One worker node, controlled through its data directory (read from the node itself)."""

    host: str
    port: int
    user: str
    data_directory: Path = field(init=False)
    frozen: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        with psycopg.connect(host=self.host, port=self.port, user=self.user, dbname="postgres") as conn:
            self.data_directory = Path(conn.execute("SHOW data_directory").fetchone()[0])
            self.major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000

    def _pg_ctl(self, *args: str) -> None:
        binary = Path(f"/usr/lib/postgresql/{self.major}/bin/pg_ctl")
        command = [
            str(binary) if binary.exists() else (shutil.which("pg_ctl") or "pg_ctl"),
            "-D",
            str(self.data_directory),
        ]
        owner = self.data_directory.owner()
        if os.geteuid() == 0 and owner != "root":
            command = ["runuser", "-u", owner, "--", *command]
        subprocess.run([*command, *args], check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        self._pg_ctl("-l", f"{self.data_directory}.log", "-w", "-t", "60", "start")

    def postmaster(self) -> int:
        return int((self.data_directory / "postmaster.pid").read_text().split()[0])

    def _children(self, parent: int) -> list[int]:
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                    children.append(int(entry.name))
        return children

    def freeze(self) -> None:
        """``kill -STOP`` the postmaster, then every process it had forked (it can fork no more)."""
        postmaster = self.postmaster()
        os.kill(postmaster, signal.SIGSTOP)
        self.frozen = [postmaster]
        for pid in self._children(postmaster):
            try:
                os.kill(pid, signal.SIGSTOP)
                self.frozen.append(pid)
            except ProcessLookupError:
                pass

    def thaw(self) -> None:
        for pid in reversed(self.frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen = []


@pytest.fixture
def cluster(settings) -> Iterator[dict[int, Worker]]:
    """The cluster's workers by port, with a 2 s statement timeout on the test database."""
    if not os.environ.get("COBEE_CITUS_FAULTS"):
        pytest.skip("stops and freezes Citus workers: set COBEE_CITUS_FAULTS=1 on a cluster of its own")
    if connection.vendor != "postgresql" or not is_citus(connection):
        pytest.fail("COBEE_CITUS_FAULTS is set but DATABASE_URL is not a Citus coordinator")
    rows = _fetch("SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' AND groupid <> 0")
    assert len(rows) >= 2, "the fault tests need two workers"
    user = connection.settings_dict["USER"] or "postgres"
    workers = {int(port): Worker(host, int(port), user) for host, port in rows}
    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{name}" SET statement_timeout = {int(STATEMENT_TIMEOUT * 1000)}')
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "CONNECT_TIMEOUT": CONNECT_TIMEOUT}
    connections.close_all()  # the next connections read the new settings
    try:
        yield workers
    finally:
        for worker in workers.values():
            worker.thaw()
            if not (worker.data_directory / "postmaster.pid").exists():
                worker.start()
        connections.close_all()
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" RESET statement_timeout')
        connections.close_all()


@pytest.fixture
def companies(cluster) -> dict[int, list[uuid.UUID]]:
    """Companies with an employee each, by the worker port that holds their shard (three on each)."""
    table = Employee._meta.db_table
    placed: dict[int, list[uuid.UUID]] = collections.defaultdict(list)
    for index in range(200):
        if all(len(placed[port]) >= 3 for port in cluster):
            break
        company = Company.objects.create(name=f"Placed {index}")
        with state.for_company(company.pk):
            Employee.objects.create(
                company=company, email=f"e{index}@x.test", legal_id=str(index), name="N", surname="S"
            )
        ((port,),) = _fetch(
            "SELECT nodeport FROM pg_dist_shard_placement WHERE shardid = get_shard_id_for_distribution_column(%s, %s)",
            [table, str(company.pk)],
        )
        placed[int(port)].append(company.pk)
    assert all(len(placed[port]) >= 3 for port in cluster), dict(placed)
    return dict(placed)


@dataclass
class Answer:
    port: int
    status: int
    seconds: float
    retry_after: str | None
    body: bytes


def ask(client: TenantAPIClient, company: uuid.UUID, port: int) -> Answer:
    started = time.monotonic()
    response = client.get(f"/api/v3/companies/{company}/employees")
    return Answer(port, response.status_code, time.monotonic() - started, response.get("Retry-After"), response.content)


def assert_clean_503(answer: Answer) -> None:
    assert answer.status == 503, answer
    assert answer.retry_after == "30"
    assert answer.body == f'{{"detail": "{DATABASE_UNAVAILABLE_MESSAGE}"}}'.encode()
    assert answer.seconds < BOUND, answer


def recover(client: TenantAPIClient, company: uuid.UUID, port: int) -> float:
    """Seconds until a request for ``company`` is served again (polled every 50 ms, at most 30 s)."""
    started = time.monotonic()
    while time.monotonic() - started < 30:
        if ask(client, company, port).status == 200:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"company {company} on worker {port} was not served again within 30 s")


def clients_for(companies: dict[int, list[uuid.UUID]]) -> dict[uuid.UUID, TenantAPIClient]:
    return {c: TenantAPIClient.for_company(c, scopes=READ) for cs in companies.values() for c in cs}


# --- a stopped worker --------------------------------------------------------------------------------


def test_a_stopped_worker_gives_503s_for_its_companies_only(cluster, companies):
    broken, healthy = sorted(cluster)[-1], sorted(cluster)[0]
    clients = clients_for(companies)
    for port, cs in companies.items():
        for company in cs:
            assert ask(clients[company], company, port).status == 200
    cluster[broken].stop()
    try:
        down = [ask(clients[c], c, broken) for c in companies[broken] for _ in range(2)]
        served = [ask(clients[c], c, healthy) for c in companies[healthy] for _ in range(2)]
    finally:
        cluster[broken].start()
    for answer in down:
        assert_clean_503(answer)
    assert [a.status for a in served] == [200] * len(served)
    recovered = recover(clients[companies[broken][0]], companies[broken][0], broken)
    assert recovered < 5
    print(
        f"\nstopped worker: 503 in at most {max(a.seconds for a in down):.3f} s, healthy companies served "
        f"{len(served)}/{len(served)}, service back {recovered:.3f} s after the worker started"
    )


# --- a frozen worker ---------------------------------------------------------------------------------


def test_a_frozen_worker_gives_bounded_503s_while_other_companies_are_served(cluster, companies):
    broken, healthy = sorted(cluster)[-1], sorted(cluster)[0]
    clients = clients_for(companies)
    # Four request threads (four server workers), each with its own persistent connection, asking
    # for companies on both workers in turn.
    mixes = [[(c, p) for p in (healthy, broken) for c in companies[p][i % 3 : i % 3 + 1]] for i in range(4)]
    # And two that serve only companies of the healthy worker.
    mixes += [[(c, healthy) for c in companies[healthy]] for _ in range(2)]
    answers: list[Answer] = []
    lock = threading.Lock()
    stop = threading.Event()
    warmed = threading.Barrier(len(mixes) + 1)
    errors: list[BaseException] = []

    def serve(mix: list[tuple[uuid.UUID, int]]) -> None:
        try:
            for company, port in mix:  # cached coordinator connections to both workers
                assert ask(clients[company], company, port).status == 200
            warmed.wait(timeout=60)
            while not stop.is_set():
                for company, port in mix:
                    answer = ask(clients[company], company, port)
                    with lock:
                        answers.append(answer)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            warmed.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=serve, args=(mix,)) for mix in mixes]
    for thread in threads:
        thread.start()
    warmed.wait(timeout=60)
    frozen_for = 8.0
    cluster[broken].freeze()
    try:
        time.sleep(frozen_for)
    finally:
        cluster[broken].thaw()
        stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads), "a request thread is still waiting"
    down = [a for a in answers if a.port == broken and a.status != 200]
    served = [a for a in answers if a.port == healthy]
    for answer in down:
        assert_clean_503(answer)
    assert down, "no request for the frozen worker's companies ran while it was frozen"
    assert all(a.status == 200 for a in served)
    # Each thread was held at most one bound per round trip, so healthy companies kept answering.
    assert len(served) >= 40, len(served)
    recovered = recover(clients[companies[broken][0]], companies[broken][0], broken)
    assert recovered < 5
    print(
        f"\nfrozen worker ({frozen_for:.0f} s): {len(down)} answers 503 in at most "
        f"{max(a.seconds for a in down):.3f} s, {len(served)} requests for healthy companies served "
        f"(all 200), service back {recovered:.3f} s after the worker resumed"
    )


# --- a shard split racing writes ---------------------------------------------------------------------


@api_view(["POST"])
@authentication_classes([])
@permission_classes([])
def _raise_salaries(request):
    """A corporation-wide write: one UPDATE over the companies named, on every shard they live on."""
    ids = [uuid.UUID(value) for value in request.data["companies"]]
    with state.unscoped():
        updated = Employee.objects.filter(company_id__in=ids).update(gross_salary_in_cents=F("gross_salary_in_cents"))
    return Response({"updated": updated})


urlpatterns = [path("raise", _raise_salaries)]


@pytest.mark.urls("tests.test_database_faults_citus")
def test_a_write_racing_a_shard_split_is_a_503_and_succeeds_when_retried(cluster, companies, client):
    table = Employee._meta.db_table
    every = [c for cs in companies.values() for c in cs]
    shards = {c: _fetch("SELECT get_shard_id_for_distribution_column(%s, %s)", [table, str(c)])[0][0] for c in every}
    shared = collections.Counter(shards.values())
    victim = next((c for c in every if shared[shards[c]] > 1), None)
    while victim is None:  # a company sharing its shard with another, so that it can be isolated
        company = Company.objects.create(name="Neighbour")
        with state.for_company(company.pk):
            Employee.objects.create(company=company, email="n@x.test", legal_id="7", name="N", surname="S")
        shard = _fetch("SELECT get_shard_id_for_distribution_column(%s, %s)", [table, str(company.pk)])[0][0]
        victim = next((c for c in every if shards[c] == shard), None)
        every.append(company.pk)
        shards[company.pk] = shard
    calls: list[dict] = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    signals.database_unavailable.connect(receiver)
    settings_dict = connection.settings_dict
    admin = psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"] or "postgres",
        dbname=settings_dict["NAME"],
        autocommit=True,
    )
    body = {"companies": [str(c) for c in every]}
    result: dict = {}

    def write() -> None:
        try:
            result["response"] = client.post("/raise", body, content_type="application/json")
        finally:
            connections.close_all()

    try:
        admin.execute("BEGIN")
        admin.execute(
            "SELECT isolate_tenant_to_new_shard(%s::regclass, %s::uuid, 'CASCADE', "
            "shard_transfer_mode => 'block_writes')",
            [table, str(victim)],
        )
        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.5)  # the write is planned against the old shard and waits for the split's locks
        admin.execute("COMMIT")
        writer.join(timeout=30)
    finally:
        admin.close()
        signals.database_unavailable.disconnect(receiver)
    response = result["response"]
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "30"
    assert response.json() == {"detail": DATABASE_UNAVAILABLE_MESSAGE}
    assert [call["reason"] for call in calls] == [DatabaseFault.SHARD_MOVED.value]
    retried = client.post("/raise", body, content_type="application/json")
    assert retried.status_code == 200
    assert retried.json() == {"updated": len(every)}
