"""``manage.py demo``: seeds once, prints the same working clients every time, serves what it prints."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from cobee_django.devissuer import keys
from cobee_django.devissuer.models import DevClient
from cobee_django.state import unscoped
from cobee_django.testing import install_key_set, uninstall_key_set
from testproject.api import seed
from testproject.api.management.commands.demo import server_address
from testproject.api.models import BenefitBagConfig, BenefitModel, Consumption, Employee

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def demo_settings(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.COBEE_DEV_ISSUER = {**settings.COBEE_DEV_ISSUER, "ENABLED": True, "KEY_DIR": tmp_path}
    settings.DEBUG = True  # as in development (pytest-django turns DEBUG off; the issuer then refuses)
    return settings


def run_demo() -> str:
    out = io.StringIO()
    call_command("demo", "--no-serve", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    from cobee_django.models import Company, Corporation

    with unscoped():
        return {
            model.__name__: model.objects.count()
            for model in (Corporation, Company, Employee, BenefitModel, BenefitBagConfig, Consumption, DevClient)
        }


def printed_credentials(output: str) -> dict[str, str]:
    return dict(re.findall(r"client_id=(\S+)\s+client_secret=(\S+)", output))


def test_running_the_demo_twice_duplicates_nothing(db, demo_settings):
    first = run_demo()
    after_first = counts()
    assert after_first == {
        "Corporation": 2,
        "Company": 6,
        "Employee": 27,
        "BenefitModel": 12,
        "BenefitBagConfig": 36,
        "Consumption": after_first["Consumption"],
        "DevClient": 8,
    }
    assert after_first["Consumption"] > 50
    second = run_demo()
    assert counts() == after_first
    assert printed_credentials(second) == printed_credentials(first)
    assert len(printed_credentials(first)) == 8
    secrets_file = demo_settings.VAR_DIR / "demo-clients.json"
    assert secrets_file.stat().st_mode & 0o077 == 0
    for client_id, secret in printed_credentials(first).items():
        assert DevClient.objects.get(client_id=client_id).check_secret(secret)


def test_the_seed_has_what_the_demo_promises(db, demo_settings):
    summary = seed.seed()
    from cobee_django.models import Company

    assert Company.objects.filter(corporation__isnull=True).count() == 1
    assert Company.objects.filter(corporation=summary.corporations_by_slug["grupo-norte"]).count() == 3
    with unscoped():
        states = set(Employee.objects.values_list("state", flat=True))
        assert states == {"active", "not-active", "removed", "blocked"}
        moved = Employee.objects.filter(legal_id=seed.dni(48_123_456))
        assert moved.count() == 2
        assert {e.company.corporation_id for e in moved} == {summary.corporations_by_slug["grupo-norte"].id}
        assert set(Consumption.objects.values_list("payroll", flat=True)) == set(seed.PAYROLLS)


def test_a_lost_secrets_file_rotates_the_secrets(db, demo_settings):
    first = printed_credentials(run_demo())
    (demo_settings.VAR_DIR / "demo-clients.json").unlink()
    second = printed_credentials(run_demo())
    assert set(second) == set(first)
    for client_id in first:
        assert second[client_id] != first[client_id]
        client = DevClient.objects.get(client_id=client_id)
        assert client.check_secret(second[client_id])
        assert not client.check_secret(first[client_id])


def test_the_printed_commands_get_a_token_and_list_the_right_company(db, demo_settings, client):
    output = run_demo()
    token_line = next(line for line in output.splitlines() if "oauth/token" in line and "TOKEN=" in line)
    body = json.loads(shlex.split(token_line.split("-d ", 1)[1])[0])
    response = client.post("/oauth/token", body, content_type="application/json")
    assert response.status_code == 200
    issuer = demo_settings.COBEE_DJANGO["ISSUER"]
    install_key_set(issuer, keys.get_issuer().jwks())
    try:
        list_line = next(
            line for line in output.splitlines() if line.strip().startswith("curl -s http") and "/employees " in line
        )
        url = list_line.split()[2]
        listed = client.get(
            url.removeprefix(issuer.rstrip("/")), HTTP_AUTHORIZATION=f"Bearer {response.json()['access_token']}"
        )
    finally:
        uninstall_key_set(issuer)
    assert listed.status_code == 200
    company = seed.seed_id("company", seed.COMPANIES[0].slug)
    assert url.endswith(f"/api/v3/companies/{company}/employees")
    assert {e["companyId"] for e in listed.json()["employees"]} == {str(company)}


def test_with_an_external_issuer_the_demo_seeds_but_creates_no_clients(db, demo_settings):
    demo_settings.COBEE_DEV_ISSUER = {**demo_settings.COBEE_DEV_ISSUER, "ENABLED": False}
    output = run_demo()
    assert "The dev issuer is off" in output
    assert "client_secret" not in output
    assert not DevClient.objects.exists()
    assert counts()["Employee"] == 27


@pytest.mark.parametrize(
    ("issuer", "address"),
    [
        ("http://127.0.0.1:8000/", "127.0.0.1:8000"),
        ("http://localhost:9000/", "localhost:9000"),
        ("http://[::1]:8001/", "[::1]:8001"),
        ("http://127.0.0.1/", "127.0.0.1:80"),
    ],
)
def test_the_demo_serves_where_its_issuer_points(issuer, address):
    assert server_address(issuer) == address


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow  # the demo served from a fresh var/ in a subprocess
@pytest.mark.skipif(shutil.which("curl") is None, reason="the printed commands use curl")
def test_fresh_checkout_demo_serves_and_its_curl_commands_work(tmp_path):
    """The README's flow in a subprocess: a fresh var/ dir, `manage.py demo`, then the printed curls."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COBEE_", "DJANGO_", "DATABASE_URL"))}
    env.update(COBEE_DEMO_VAR_DIR=str(tmp_path), COBEE_DJANGO_ISSUER=f"http://127.0.0.1:{port}/", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Serving on" in line:
                break
        output = "".join(lines)
        assert "Serving on" in output, output
        token_line = next(
            line for line in lines if "TOKEN=$(curl" in line and "/oauth/token" in line and "CORP" not in line
        )
        list_line = next(line for line in lines if line.strip().startswith("curl -s http") and "/employees " in line)
        script = f"set -e\n{token_line.strip()}\n{list_line.strip()}\n"
        deadline = time.monotonic() + 30
        while True:
            result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
            if (result.returncode == 0 and result.stdout.startswith("{")) or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # the server thread is still binding its socket
        body = json.loads(result.stdout)
        company = seed.seed_id("company", seed.COMPANIES[0].slug)
        assert {e["companyId"] for e in body["employees"]} == {str(company)}
        assert len(body["employees"]) == len(seed.COMPANIES[0].people)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        assert db.execute("select count(*) from api_employee").fetchone() == (27,)
    assert (tmp_path / "dev-issuer-key.pem").exists()


def test_the_readme_has_exactly_two_commands_and_one_runs_the_demo():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"<!-- (\w+)-command -->\n```\n(.+?)\n```\n<!-- /\1-command -->", readme)
    assert [name for name, _ in commands] == ["demo", "test"]
    demo = dict(commands)["demo"]
    assert demo == "python3 -m venv .venv && .venv/bin/pip install -q -e '.[demo]' && .venv/bin/python manage.py demo"


def test_the_printed_dev_token_command_gives_a_token_the_api_accepts(db, demo_settings, client):
    output = run_demo()
    line = next(line for line in output.splitlines() if "manage.py dev_token" in line)
    args = shlex.split(line.split("manage.py ", 1)[1])
    out = io.StringIO()
    with override_settings(DEBUG=True):  # as in development (pytest-django turns DEBUG off)
        call_command(*args, stdout=out)
    company = seed.seed_id("company", seed.COMPANIES[0].slug)
    issuer = demo_settings.COBEE_DJANGO["ISSUER"]
    install_key_set(issuer, keys.get_issuer().jwks())
    try:
        listed = client.get(
            f"/api/v3/companies/{company}/employees", HTTP_AUTHORIZATION=f"Bearer {out.getvalue().strip()}"
        )
    finally:
        uninstall_key_set(issuer)
    assert listed.status_code == 200
    assert {e["companyId"] for e in listed.json()["employees"]} == {str(company)}


@pytest.mark.slow  # manage.py migrate and demo in subprocesses
def test_the_demo_keeps_working_on_a_var_database_of_the_old_devissuer_app(tmp_path):
    """A var/ database made when the issuer was testproject.devissuer (app label "devissuer")."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COBEE_", "DJANGO_", "DATABASE_URL"))}
    env.update(COBEE_DEMO_VAR_DIR=str(tmp_path))

    def demo() -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", "demo", "--no-serve"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    demo()
    # What the old app left: its migration records and its tables, and none of the new app's.
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        db.execute("drop table cobee_devissuer_devclient")
        db.execute("drop table cobee_devissuer_devperson")
        db.execute("delete from django_migrations where app = 'cobee_devissuer'")
        db.execute("create table devissuer_devclient (id integer primary key, client_id varchar(64) unique)")
        db.execute("insert into devissuer_devclient (client_id) values ('demo-norte-distribucion')")
        for name in ("0001_initial", "0002_devperson"):
            db.execute(
                "insert into django_migrations (app, name, applied) values ('devissuer', ?, '2026-11-29')", (name,)
            )
    output = demo()
    printed = printed_credentials(output)
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        stored = {row[0] for row in db.execute("select client_id from cobee_devissuer_devclient")}
        people = db.execute("select count(*) from cobee_devissuer_devperson").fetchone()[0]
    assert stored == set(printed)
    assert people > 0
