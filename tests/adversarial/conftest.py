"""The adversarial harness: the test project served by real servers, attacked over real HTTP.

- A :class:`~cobee_django.testing.JWKSServer` on 127.0.0.1 publishes the issuer's keys; the served
  project trusts it through ``COBEE_DJANGO_ISSUER`` / ``COBEE_DJANGO_JWKS_URL`` /
  ``COBEE_DJANGO_AUDIENCE``, exactly as it would trust Auth0.
- The project runs in subprocesses: gunicorn (``gthread``, 8 threads) for WSGI and uvicorn for ASGI,
  each on 127.0.0.1 with an ephemeral port, with DEBUG off, on a database of its own: a SQLite file,
  or ``<name>_adversarial`` next to the PostgreSQL database of ``DATABASE_URL``. The harness migrates
  and seeds it (``serverdb``) and reads it back with plain SQL to prove attacks changed nothing.
- Every suite ends with one line, ``<suite>: N cases, N held, N failed``, printed by
  :func:`pytest_terminal_summary` from the cases each test reported (or the test itself).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AUDIENCE = "https://api.cobee.io"
READ = ("read:employees",)
READ_WRITE = ("read:employees", "write:employees")
#: A safety bound on every response (not a benchmark): a hostile request must not hang a worker.
RESPONSE_BOUND = 2.0
CHALLENGE = re.compile(
    r'Bearer realm="[^"]+"(?:, error="(?P<error>[a-z_]+)"(?:, error_description="[^"]*")?(?:, scope="[^"]*")?)?'
)

# --- one summary line per suite --------------------------------------------------------------------

SUITES = {
    "test_token_attacks": "token attacks",
    "test_cross_tenant": "cross-tenant",
    "test_concurrency": "concurrency",
    "test_jwks_faults": "jwks faults",
    "test_fuzz": "fuzz",
    "test_asgi_surfaces": "asgi surfaces",
}


@dataclass
class Tally:
    cases: int = 0
    held: int = 0
    failed: int = 0
    slowest: float = 0.0


_tallies: dict[str, Tally] = {}
_item_records: dict[str, list[int]] = {}
_records_lock = threading.Lock()


def _suite_of(nodeid: str) -> str | None:
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return SUITES.get(module)


class Recorder:
    """What one test reports to its suite's summary: sub-cases (e.g. requests) and response times."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.suite = _suite_of(nodeid) or "adversarial"

    def case(self, held: bool, n: int = 1) -> None:
        with _records_lock:
            record = _item_records.setdefault(self.nodeid, [0, 0])
            record[0 if held else 1] += n

    def timed(self, seconds: float) -> None:
        with _records_lock:
            tally = _tallies.setdefault(self.suite, Tally())
            tally.slowest = max(tally.slowest, seconds)


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Recorder:
    return Recorder(request.node.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    suite = _suite_of(report.nodeid)
    if suite is None or report.skipped:
        return
    if report.when == "setup" and report.passed:
        return
    if report.when == "teardown" and report.passed:
        return
    tally = _tallies.setdefault(suite, Tally())
    held, failed = _item_records.pop(report.nodeid, [0, 0]) if report.when == "call" else (0, 0)
    if report.failed and not failed:
        failed = 1  # the test failed outside the cases it counted (or before counting any)
    if not held and not failed:
        held = 1
    tally.cases += held + failed
    tally.held += held
    tally.failed += failed


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for suite in SUITES.values():
        tally = _tallies.get(suite)
        if tally is None:
            continue
        line = f"{suite}: {tally.cases} cases, {tally.held} held, {tally.failed} failed"
        if tally.slowest:
            line += f" (slowest response {tally.slowest:.3f} s, bound {RESPONSE_BOUND:.0f} s)"
        terminalreporter.write_line(line)


# --- the served project's database -------------------------------------------------------------------


@dataclass
class ServerDatabase:
    """The database the served project uses, and a plain-SQL view of it for before/after checks."""

    url: str
    vendor: str
    path: Path | None = None
    conninfo: str | None = None
    admin: str | None = None  # where to connect to drop it (PostgreSQL)
    name: str = ""

    def drop(self) -> None:
        """Remove a PostgreSQL database once its servers are stopped (SQLite files go with the tmp dir)."""
        if self.vendor != "postgresql" or self.admin is None:
            return
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.admin, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))
            if admin.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'").fetchone() is not None:
                workers = admin.execute(
                    "SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' AND groupid <> 0"
                ).fetchall()
                for host, port in workers:  # the same database on each Citus worker
                    with psycopg.connect(self.admin, host=host, port=port, autocommit=True) as worker:
                        worker.execute(
                            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
                        )

    def connect(self) -> Any:
        if self.vendor == "sqlite":
            import sqlite3

            return sqlite3.connect(str(self.path), timeout=20)
        import psycopg

        return psycopg.connect(self.conninfo, autocommit=True)

    #: Tables an attack must never change. Timestamps a legitimate request may refresh (``updated_at``
    #: on a no-op PATCH, the provisioning time a verified corporation token asserts) are left out.
    TABLES = (
        "cobee_django_corporation",
        "cobee_django_company",
        "api_employee",
        "api_benefitmodel",
        "api_benefitbagconfig",
        "api_consumption",
    )
    VOLATILE = frozenset({"updated_at", "membership_asserted_at", "membership_source"})

    def snapshot(self) -> dict[str, str]:
        """A digest of every row of every watched table (ordered by primary key)."""
        digests = {}
        connection = self.connect()
        try:
            for table in self.TABLES:
                cursor = connection.cursor()
                cursor.execute(f"SELECT * FROM {table} ORDER BY id")
                keep = [i for i, column in enumerate(cursor.description) if column[0] not in self.VOLATILE]
                digest = hashlib.sha256()
                rows = cursor.fetchall()
                for row in rows:
                    digest.update(repr([str(row[i]) for i in keep]).encode())
                digests[table] = f"{len(rows)} rows {digest.hexdigest()[:16]}"
        finally:
            connection.close()
        return digests

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        connection = self.connect()
        try:
            cursor = connection.cursor()
            cursor.execute(sql if self.vendor == "postgresql" else sql.replace("%s", "?"), tuple(params))
            rows = [tuple(row) for row in cursor.fetchall()] if cursor.description else []
            connection.commit()
            return rows
        finally:
            connection.close()


def _on_every_citus_node(maintenance: Any, name: str, params: dict[str, Any]) -> None:
    """On a Citus coordinator: the same database on each worker, and the workers registered in it."""
    import psycopg
    from psycopg import sql

    if maintenance.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'").fetchone() is None:
        return
    nodes = maintenance.execute(
        "SELECT groupid = 0, nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' ORDER BY groupid"
    ).fetchall()
    workers = [(host, port) for coordinator, host, port in nodes if not coordinator]
    for host, port in workers:
        with psycopg.connect(dbname="postgres", autocommit=True, **{**params, "host": host, "port": port}) as worker:
            worker.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            worker.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(dbname=name, autocommit=True, **params) as coordinator:
        for is_coordinator, host, port in nodes:
            if is_coordinator:
                coordinator.execute("SELECT citus_set_coordinator_host(%s, %s)", [host, port])
        for host, port in workers:
            coordinator.execute("SELECT citus_add_node(%s, %s)", [host, port])


def _make_server_database(tmp_dir: Path, suffix: str = "adversarial") -> ServerDatabase:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        path = tmp_dir / f"{suffix}.sqlite3"
        return ServerDatabase(url=f"sqlite:///{path}", vendor="sqlite", path=path)
    import dj_database_url
    import psycopg
    from psycopg import sql

    config = dj_database_url.parse(base)
    name = f"{config['NAME']}_{suffix}"
    params = {
        "host": config.get("HOST") or "127.0.0.1",
        "port": config.get("PORT") or 5432,
        "user": config.get("USER") or "postgres",
        "password": config.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as maintenance:
        maintenance.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        maintenance.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        _on_every_citus_node(maintenance, name, params)
    conninfo = psycopg.conninfo.make_conninfo(dbname=name, **{k: v for k, v in params.items() if v is not None})
    url = base.rsplit("/", 1)[0] + "/" + name
    admin = psycopg.conninfo.make_conninfo(dbname="postgres", **{k: v for k, v in params.items() if v is not None})
    return ServerDatabase(url=url, vendor="postgresql", conninfo=conninfo, admin=admin, name=name)


# --- the issuer -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[Any]:
    """The issuer's key set, served over loopback HTTP for the whole session."""
    from cobee_django.testing import JWKSServer

    with JWKSServer() as server:
        yield server


@pytest.fixture(scope="session")
def issuer(jwks_server: Any) -> Any:
    """The trusted issuer: its ``iss`` is the JWKS server's base URL, as an Auth0 tenant's would be."""
    from cobee_django.testing import TokenIssuer

    token_issuer = TokenIssuer(issuer=jwks_server.base_url, audience=AUDIENCE)
    jwks_server.serve(token_issuer)
    return token_issuer


# --- the served project ----------------------------------------------------------------------------


def _gunicorn_command() -> list[str]:
    command = [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "8", "-w", "1"]
    command += ["-b", "127.0.0.1:0", "--limit-request-field_size", "32768", "--graceful-timeout", "2"]
    from gunicorn.config import KNOWN_SETTINGS

    if any("--no-control-socket" in (setting.cli or ()) for setting in KNOWN_SETTINGS):
        command.append("--no-control-socket")  # gunicorn 24+: no shared control socket between servers
    return [*command, "testproject.wsgi:application"]


def _uvicorn_command() -> list[str]:
    return [
        *(sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "0"),
        *("--lifespan", "off", "--no-access-log", "--h11-max-incomplete-event-size", "65536"),
        "testproject.asgi:application",
    ]


def _own_group_dies_with_us() -> None:
    """In the server's child process: its own process group (stopped as one), and on Linux a SIGTERM
    when the test process dies, so a killed test run leaves no server behind."""
    os.setsid()
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _daphne_command() -> list[str]:
    return [
        *(sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", "0", "--access-log", os.devnull),
        "testproject.asgi:application",
    ]


_LISTENING = re.compile(
    rb"(?:Listening at: |Uvicorn running on )http://127\.0\.0\.1:(\d+)|Listening on TCP address 127\.0\.0\.1:(\d+)"
)
_COMMANDS = {"wsgi": _gunicorn_command, "asgi": _uvicorn_command, "daphne": _daphne_command}


class ServedProject:
    """The test project under gunicorn (``kind="wsgi"``), uvicorn (``"asgi"``) or Daphne (``"daphne"``)."""

    def __init__(self, kind: str, env: Mapping[str, str], log_path: Path) -> None:
        self.kind = kind
        self.env = dict(env)
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServedProject:
        command = _COMMANDS[self.kind]()
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_own_group_dies_with_us
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.log_path.read_bytes())
            if match:
                self.port = int(match.group(1) or match.group(2))
                break
            if self.process.poll() is not None:
                raise RuntimeError(f"the {self.kind} server exited:\n{self.log()}")
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"the {self.kind} server did not start:\n{self.log()}")
        while time.monotonic() < deadline:  # the worker imports Django after the socket is bound
            try:
                status, _, _, _ = self.request("GET", "/api/v3/employees")
                if status < 500:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the {self.kind} server does not answer:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", "replace")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        headers: Iterable[tuple[str, str | bytes]] = (),
        body: bytes | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, http.client.HTTPMessage, bytes, float]:
        """One request with exactly these header lines (repeats allowed); ``(status, headers, body, seconds)``."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            started = time.perf_counter()
            connection.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            content = response.read()
            return response.status, response.headers, content, time.perf_counter() - started
        finally:
            connection.close()

    def get_json(self, path: str, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
        headers = [("Authorization", f"Bearer {token}")] if token else []
        status, _, content, _ = self.request("GET", path, headers, **kwargs)
        try:
            return status, json.loads(content)
        except ValueError:
            return status, content


def server_env(
    jwks_server: Any, database: ServerDatabase, var_dir: Path, overrides: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """The environment of a served project: only what the harness sets, plus the interpreter's basics."""
    inherited = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "SYSTEMROOT")
    env = {name: os.environ[name] for name in inherited if name in os.environ}
    env.update(
        PYTHONPATH=str(ROOT),
        PYTHONDONTWRITEBYTECODE="1",
        DJANGO_SETTINGS_MODULE="tests.testapp.server_settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="adversarial-" + uuid.uuid4().hex,
        DATABASE_URL=database.url,
        COBEE_DEMO_VAR_DIR=str(var_dir),
        COBEE_DJANGO_ISSUER=jwks_server.base_url,
        COBEE_DJANGO_JWKS_URL=jwks_server.jwks_url,
        COBEE_DJANGO_AUDIENCE=AUDIENCE,
        COBEE_ADVERSARIAL_SETTINGS=json.dumps(dict(overrides or {})),
    )
    return env


@dataclass
class World:
    """The seeded data the served project holds (ids as strings)."""

    corporations: list[str]
    companies: dict[str, dict[str, Any]]
    database: ServerDatabase
    var_dir: Path

    def company_ids(self) -> list[str]:
        return list(self.companies)

    def corporation_of(self, company: str) -> str | None:
        corporation: str | None = self.companies[company]["corporation"]
        return corporation

    def companies_of(self, corporation: str) -> list[str]:
        return [c for c, data in self.companies.items() if data["corporation"] == corporation]

    def lone_company(self) -> str:
        return next(c for c, data in self.companies.items() if data["corporation"] is None)

    def first_company(self) -> str:
        return next(c for c, data in self.companies.items() if data["corporation"] is not None)


def fresh_world(jwks_server: Any, tmp_dir: Path, suffix: str = "adversarial") -> World:
    """A new database for served projects, migrated and seeded (``suffix`` names it)."""
    database = _make_server_database(tmp_dir, suffix)
    var_dir = tmp_dir / "var"
    var_dir.mkdir()
    completed = subprocess.run(
        [sys.executable, "-m", "tests.testapp.serverdb"],
        cwd=ROOT,
        env=server_env(jwks_server, database, var_dir),
        capture_output=True,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"could not prepare the server database:\n{completed.stderr.decode(errors='replace')}")
    line = next(line for line in completed.stdout.decode().splitlines() if line.startswith("WORLD "))
    data = json.loads(line.removeprefix("WORLD "))
    return World(corporations=data["corporations"], companies=data["companies"], database=database, var_dir=var_dir)


@pytest.fixture(scope="session")
def world(jwks_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The served projects' database, migrated and seeded once per session (dropped afterwards)."""
    prepared = fresh_world(jwks_server, tmp_path_factory.mktemp("adversarial"))
    yield prepared
    prepared.database.drop()


def _serve(kind: str, jwks_server: Any, world: World, tmp_dir: Path, overrides: Mapping[str, Any] | None = None) -> Any:
    env = server_env(jwks_server, world.database, world.var_dir, overrides)
    return ServedProject(kind, env, tmp_dir / f"{kind}-{uuid.uuid4().hex[:8]}.log").start()


@pytest.fixture(scope="session")
def wsgi_server(
    issuer: Any, jwks_server: Any, world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedProject]:
    server = _serve("wsgi", jwks_server, world, tmp_path_factory.mktemp("wsgi"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def asgi_server(
    issuer: Any, jwks_server: Any, world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedProject]:
    server = _serve("asgi", jwks_server, world, tmp_path_factory.mktemp("asgi"))
    yield server
    server.stop()


@pytest.fixture(params=["wsgi", "asgi"])
def served(request: pytest.FixtureRequest) -> ServedProject:
    """Each test using it runs once against gunicorn (WSGI) and once against uvicorn (ASGI)."""
    server: ServedProject = request.getfixturevalue(f"{request.param}_server")
    return server


@pytest.fixture
def start_server(jwks_server: Any, world: World, tmp_path: Path) -> Iterator[Any]:
    """Start a served project with its own settings overrides (and optionally its own key-set server)."""
    started: list[ServedProject] = []

    def start(kind: str = "wsgi", overrides: Mapping[str, Any] | None = None, keys: Any = None) -> ServedProject:
        env = server_env(keys or jwks_server, world.database, world.var_dir, overrides)
        server = ServedProject(kind, env, tmp_path / f"{kind}-{len(started)}.log")
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


# --- tokens -----------------------------------------------------------------------------------------


def token_for(issuer: Any, world: World, company: str, *, corporation: bool = False, **kwargs: Any) -> str:
    """A valid token for ``company`` (corporation-wide when ``corporation``); read and write scopes by default."""
    kwargs.setdefault("scopes", READ_WRITE)
    token: str = issuer.make_token(company, world.corporation_of(company) if corporation else None, **kwargs)
    return token


def check_challenge(headers: http.client.HTTPMessage, error: str | None) -> None:
    """``WWW-Authenticate`` is a Bearer challenge with ``error`` (or without any error for ``None``)."""
    values = headers.get_all("WWW-Authenticate") or []
    assert len(values) == 1, values
    match = CHALLENGE.fullmatch(values[0])
    assert match is not None, values[0]
    assert match.group("error") == error, values[0]


def assert_no_leak(content: bytes, secrets: Iterable[str]) -> None:
    """The body echoes no part of a token and no traceback."""
    text = content.decode("utf-8", "replace")
    assert "Traceback" not in text and 'File "' not in text, text[:500]
    for secret in secrets:
        for part in secret.split("."):
            if len(part) >= 16:
                assert part not in text, "a token segment is echoed"
