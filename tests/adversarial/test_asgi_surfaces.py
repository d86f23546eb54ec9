"""The async ways of serving under real ASGI servers: uvicorn and Daphne, one process, one event loop.

- Hundreds of concurrent requests, alternating tenants and surfaces (plain ``async def`` views with
  ``token_required``, async class-based views, adrf, async Django Ninja), each answer holding exactly
  its caller's rows (the async ORM: ``async for``, ``acount``), or the DRF views' refusal.
- A view that forgot the decorator fails closed under the server: 401, never rows, never a 500.
- A key-set download under way does not block the event loop: while one request waits for a slow
  issuer, requests that need no download are answered at once.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from .conftest import AUDIENCE, READ, ServedProject, check_challenge

pytestmark = pytest.mark.adversarial

SURFACES = ["plain-async", "cbv-async", "adrf", "ninja-async"]
REQUESTS = 480
CLIENT_THREADS = 48


@pytest.fixture(scope="module")
def daphne_server(issuer, jwks_server, world, tmp_path_factory):
    from .conftest import _serve

    server = _serve("daphne", jwks_server, world, tmp_path_factory.mktemp("daphne"))
    yield server
    server.stop()


@pytest.fixture(params=["uvicorn", "daphne"])
def asgi(request) -> ServedProject:
    server: ServedProject = request.getfixturevalue("asgi_server" if request.param == "uvicorn" else "daphne_server")
    return server


def employees_of(world, company: str) -> set[str]:
    return {employee["id"] for employee in world.companies[company]["employees"]}


def plan(issuer, world) -> list[tuple[str, str | None, str, int]]:
    """``(path, token, company, expected status)`` for every request, tenants and surfaces interleaved."""
    callers: list[tuple[str | None, set[str]]] = []
    for company in world.company_ids():
        callers.append((issuer.make_token(company, scopes=READ), {company}))
    for corporation in world.corporations:
        reach = set(world.companies_of(corporation))
        callers.append((issuer.make_token(world.companies_of(corporation)[0], corporation, scopes=READ), reach))
    rng = random.Random(22)
    companies = world.company_ids()
    jobs = []
    for n in range(REQUESTS):
        token, reach = callers[n % len(callers)]
        surface = SURFACES[(n // len(callers)) % len(SURFACES)]
        # Mostly the caller's own companies, every fourth request another tenant's.
        company = rng.choice(sorted(reach)) if n % 4 else rng.choice(companies)
        status = 200 if company in reach else 403
        jobs.append((f"/api/v3/{surface}/companies/{company}/employees", token, company, status))
    return jobs


def test_the_tenant_never_leaks_between_concurrent_requests(asgi, issuer, world, record):
    jobs = plan(issuer, world)
    failures: list[str] = []
    lock = threading.Lock()

    def run(job: tuple[str, str | None, str, int]) -> None:
        path, token, company, want = job
        status, body = asgi.get_json(path, token)
        problem = None
        if status != want:
            problem = f"{path}: {status}, expected {want}"
        elif status == 200:
            got = {row["id"] for row in body["employees"]}
            if got != employees_of(world, company) or body["count"] != len(got):
                problem = f"{path}: {len(got)} rows, {len(got - employees_of(world, company))} foreign"
        with lock:
            record.case(problem is None)
            if problem:
                failures.append(problem)

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        list(pool.map(run, jobs))
    assert failures == []
    assert "Traceback" not in asgi.log()


@pytest.mark.parametrize("token", [None, "valid"])
def test_a_view_that_forgot_the_decorator_fails_closed(asgi, issuer, world, token):
    company = world.first_company()
    bearer = issuer.make_token(company, scopes=READ) if token else None
    status, headers, content, _ = asgi.request(
        "GET",
        f"/api/v3/unguarded/companies/{company}/employees",
        [("Authorization", f"Bearer {bearer}")] if bearer else [],
    )
    assert status == 401, content
    assert b"token_required" in content
    check_challenge(headers, None)


def test_a_key_set_download_does_not_block_the_event_loop(start_server, tmp_path):
    """A slow issuer holds up the requests that need its keys, not the others on the same loop."""
    from cobee_django.testing import JWKSServer, TokenIssuer

    delay = 2.5
    with JWKSServer() as slow_keys:
        slow_issuer = TokenIssuer(issuer=slow_keys.base_url, audience=AUDIENCE)
        slow_keys.serve(slow_issuer)
        server = start_server("asgi", keys=slow_keys)
        slow_keys.set_fault("slow", delay=delay)
        company = "5e9e9701-9883-447d-9884-46e75993e33b"
        token = slow_issuer.make_token(company, scopes=READ)
        waiting: dict[str, Any] = {}

        def first() -> None:
            started = time.monotonic()
            waiting["status"], _ = server.get_json(f"/api/v3/plain-async/companies/{company}/employees", token)
            waiting["seconds"] = time.monotonic() - started

        downloader = threading.Thread(target=first)
        downloader.start()
        time.sleep(0.3)  # the download is under way
        timings = []
        for surface in SURFACES * 5:
            started = time.monotonic()
            status, _ = server.get_json(f"/api/v3/{surface}/companies/{company}/employees")  # no token: 401
            timings.append(time.monotonic() - started)
            assert status == 401
        downloader.join(30)
    assert waiting["seconds"] >= delay * 0.9  # it did wait for the download ...
    assert max(timings) < 1.0, timings  # ... and nobody else did
    assert sum(timings) < delay, timings
    assert waiting["status"] in (200, 403)
    assert "Traceback" not in server.log()
    print(f"asgi surfaces: {len(timings)} requests during a {delay} s download, slowest {max(timings):.3f} s")
