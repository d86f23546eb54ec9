"""The benchmarks run (tiny sizes) and print their figures; their values are not checked here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Each benchmark runs in a process of its own: minutes, so not in the default run (pytest -m bench).
pytestmark = pytest.mark.bench


def run_bench(*names: str, env: dict[str, str] | None = None) -> str:
    environment = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    environment.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", *names],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def output() -> str:
    """One quick run of every benchmark that needs no database (each runs in its own process)."""
    return run_bench("verify", "dpop", "fetch", "memory")


def test_bench_on_postgres_prints_its_figures():
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("the request and data-scale benchmarks need DATABASE_URL=postgres://...")
    # Databases of their own next to the test database: <name>_bench, <name>_bench_300, ...
    benchmarks = ("request", "server", "scale", "base-manager")
    out = run_bench(*benchmarks, env={"BENCH_DATABASE_URL": url.split("?")[0] + "_bench"})
    for line in (
        "RATIO request rps, app / hand-written baseline: ",
        "RATIO server rps, app / hand-written baseline: ",
        "RATIO scale 300 company count, scoped / hand-written: ",
        "RATIO scale 600 corporation list, scoped / hand-written: ",
        "FIGURE scale 600 plan, one company: ",
        "RATIO scale growth company list, 600 rows / 300 rows (table 2x): ",
        "RATIO scoped base manager, save() / plain: ",
        "RATIO scoped base manager, delete() with a cascade / plain: ",
    ):
        assert line in out, out


def test_bench_on_citus_prints_its_figures():
    citus = os.environ.get("BENCH_CITUS_URL", "")
    url = os.environ.get("DATABASE_URL", "")
    if not citus or not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("needs BENCH_CITUS_URL (a Citus database with workers) and DATABASE_URL on PostgreSQL")
    out = run_bench("citus", env={"BENCH_DATABASE_URL": url.split("?")[0] + "_bench"})
    for line in (
        "RATIO citus 3000 company list, Citus / plain PostgreSQL: ",
        "RATIO citus 6000 corporation first page, Citus / plain PostgreSQL: ",
        "RATIO citus 6000 company request, Citus / plain PostgreSQL: ",
        "FIGURE citus 6000 one company's shards: Task Count: 1 ",
        "RATIO citus growth company list, 6000 rows / 3000 rows (table 2x): ",
    ):
        assert line in out, out


def test_environment_is_described(output):
    out = output
    assert out.startswith("machine: ")
    for name in ("python: ", "Django ", "DRF ", "josepy ", "cryptography ", "postgresql: "):
        assert name in out


@pytest.mark.parametrize(
    ("name", "lines"),
    [
        (
            "verify",
            [
                "RATIO verify first sight / bare RSA verify: ",
                "RATIO verify cached / bare RSA verify: ",
                "RATIO josepy from_compact+verify / bare RSA verify: ",
                "FIGURE token cache bound: ",
                "FIGURE token cache and exp: ",
            ],
        ),
        ("fetch", ["FIGURE key fetches, default cooldown 30 s: ", "FIGURE key fetches, cooldown 0.2 s: "]),
        ("memory", ["FIGURE token cache memory: "]),
        (
            "dpop",
            [
                "RATIO DPoP minus Bearer / proof signature, seen before: ",
                "RATIO DPoP minus Bearer / proof signature, first sight: ",
                "RATIO replay store (cache.add) / proof signature: ",
                "FIGURE proof signature verification: ",
            ],
        ),
    ],
)
def test_bench_prints_its_figures(output, name, lines):
    section = output.split(f"== {name} (", 1)[1].split(f"== {name} took", 1)[0]
    for line in lines:
        assert line in section, output
