"""Many tenants at once: every answer holds only its caller's rows, and no tenant outlives its request.

- Over HTTP: 16 client threads x 50 requests against gunicorn (8 threads) and uvicorn, each thread on
  one kept-alive connection switching callers at random between requests (company tokens,
  corporation tokens, no token, a forged token), so one server thread serves tenant after tenant.
- In process: requests through Django's test client, sequential and as concurrent asyncio tasks
  (Django's ASGI handler), and after each one ``cobee_django.state`` has nothing bound.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from .conftest import READ

pytestmark = pytest.mark.adversarial

THREADS = 16
REQUESTS_PER_THREAD = 50
PAYROLL = "2026-10"


@dataclass(frozen=True)
class Caller:
    token: str | None
    companies: frozenset[str]
    corporation: str | None


def make_callers(issuer, world) -> list[Caller]:
    from cobee_django.testing import TokenIssuer

    callers = [
        Caller(issuer.make_token(company, scopes=READ), frozenset({company}), None) for company in world.companies
    ]
    for corporation in world.corporations:
        company = world.companies_of(corporation)[0]
        token = issuer.make_token(company, corporation, scopes=READ)
        callers.append(Caller(token, frozenset(world.companies_of(corporation)), corporation))
    forged = TokenIssuer(issuer=issuer.issuer, audience=issuer.audience, kid=issuer.kid)
    callers.append(Caller(None, frozenset(), None))
    callers.append(Caller(forged.make_token(world.first_company(), scopes=READ), frozenset(), None))
    return callers


def expected_employees(world, companies: frozenset[str]) -> set[str]:
    return {employee["id"] for company in companies for employee in world.companies[company]["employees"]}


def check_answer(world, caller: Caller, path: str, status: int, body: bytes) -> str | None:
    """``None`` when the answer is exactly what ``caller`` may see at ``path``, else what went wrong."""
    if not caller.companies:
        return None if status == 401 else f"an unauthenticated caller got {status}"
    if status != 200:
        return f"{status} {body[:200]!r}"
    payload = json.loads(body)
    if path == "/api/v3/employees":
        got = {row["id"] for row in payload["employees"]}
        want = expected_employees(world, caller.companies)
        return None if got == want else f"employees {len(got)} rows, {len(got - want)} foreign"
    if path.endswith("/employees"):
        company = path.split("/")[4]
        got = {row["id"] for row in payload["employees"]}
        want = expected_employees(world, frozenset({company}))
        return None if got == want else f"company employees {len(got)} rows, {len(got - want)} foreign"
    if path.endswith("/benefit-models"):
        company = path.split("/")[4]
        got = {row["id"] for row in payload["benefitModels"]}
        return None if got == set(world.companies[company]["benefit_models"]) else "foreign benefit models"
    got_companies = {entry["companyId"] for entry in payload["companies"]}
    return None if got_companies == caller.companies else f"consumptions of {len(got_companies)} companies"


def paths_for(caller: Caller, rng: random.Random) -> str:
    choices = ["/api/v3/employees"]
    if caller.companies:
        company = rng.choice(sorted(caller.companies))
        choices += [f"/api/v3/companies/{company}/employees", f"/api/v3/companies/{company}/benefit-models"]
        if caller.corporation:
            choices.append(f"/api/v3/corporations/{caller.corporation}/consumptions?payroll={PAYROLL}")
    return rng.choice(choices)


def test_many_tenants_at_once_over_http(served, issuer, world, record):
    callers = make_callers(issuer, world)
    failures: list[str] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
        try:
            for _ in range(REQUESTS_PER_THREAD):
                caller = rng.choice(callers)
                path = paths_for(caller, rng)
                headers = {"Authorization": f"Bearer {caller.token}"} if caller.token else {}
                try:
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                    status, body = response.status, response.read()
                except (http.client.HTTPException, OSError):
                    # The server may close a kept-alive connection between requests: reconnect once.
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                    status, body = response.status, response.read()
                problem = check_answer(world, caller, path.split("?")[0], status, body)
                record.case(problem is None)
                if problem:
                    with lock:
                        failures.append(f"{path}: {problem}")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(client, range(THREADS)))
    assert not failures, "\n".join(failures[:20]) + "\n" + served.log()[-2000:]
    assert "Traceback" not in served.log()


def test_each_request_sees_only_its_own_tenant_in_bursts(served, issuer, world, record):
    """Bursts of simultaneous requests, one per caller, repeated: the same worker threads switch tenants."""
    callers = [c for c in make_callers(issuer, world) if c.companies]
    failures = []

    def one(caller: Caller) -> str | None:
        status, _, body, seconds = served.request(
            "GET", "/api/v3/employees", [("Authorization", f"Bearer {caller.token}")]
        )
        record.timed(seconds)
        return check_answer(world, caller, "/api/v3/employees", status, body)

    with ThreadPoolExecutor(max_workers=len(callers)) as pool:
        for _ in range(10):
            for problem in pool.map(one, callers):
                record.case(problem is None)
                if problem:
                    failures.append(problem)
    assert not failures, failures[:10]


# --- in process: nothing stays bound after a request ---------------------------------------------------


@pytest.fixture
def local_world(db, settings):
    """The seeded data set in the test database, and a trusted issuer installed without HTTP."""
    from cobee_django.models import Company
    from cobee_django.state import unscoped
    from cobee_django.testing import TokenIssuer, install_key_set, uninstall_key_set
    from testproject.api import seed

    issuer = TokenIssuer(issuer="https://tenant.example/", audience="https://api.cobee.io")
    settings.COBEE_DJANGO = {
        "ISSUER": issuer.issuer,
        "AUDIENCE": issuer.audience,
        "JWKS_CACHE_ALIAS": None,
    }
    install_key_set(issuer.issuer, issuer.jwks())
    with unscoped():
        seed.seed()
        companies = {str(c.pk): str(c.corporation_id) if c.corporation_id else None for c in Company.objects.all()}
    yield issuer, companies
    uninstall_key_set(issuer.issuer)


def assert_nothing_bound() -> None:
    from cobee_django.state import is_unscoped, tenant_or_none

    assert tenant_or_none() is None
    assert not is_unscoped()


def local_tokens(issuer, companies):
    tokens = []
    for company, corporation in companies.items():
        tokens.append((issuer.make_token(company, scopes=READ), {company}))
        if corporation:
            reach = {c for c, corp in companies.items() if corp == corporation}
            tokens.append((issuer.make_token(company, corporation, scopes=READ), reach))
    return tokens


def test_no_tenant_survives_a_request_in_process(local_world, record):
    from rest_framework.test import APIClient

    issuer, companies = local_world
    tokens = local_tokens(issuer, companies)
    client = APIClient()
    rng = random.Random(7)
    for _ in range(30):
        token, reach = rng.choice(tokens)
        path = rng.choice(["/api/v3/employees", f"/api/v3/companies/{rng.choice(sorted(reach))}/employees"])
        response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
        ok = response.status_code == 200 and {row["companyId"] for row in response.json()["employees"]} <= reach
        record.case(ok)
        assert ok, response.content[:300]
        assert_nothing_bound()
        # Failures unbind too: a forged token, another company's URL, a missing scope.
        for response in (
            client.get(path, HTTP_AUTHORIZATION="Bearer x.y.z"),
            client.get(
                f"/api/v3/companies/{next(iter(set(companies) - reach))}/employees",
                HTTP_AUTHORIZATION=f"Bearer {token}",
            ),
            client.post(path, {}, format="json", HTTP_AUTHORIZATION=f"Bearer {token}"),
        ):
            record.case(400 <= response.status_code < 500)
            assert 400 <= response.status_code < 500
            assert_nothing_bound()


def test_concurrent_asgi_requests_in_process(local_world, record):
    """Tasks for different tenants interleave on one event loop; each sees its own rows only."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    issuer, companies = local_world
    tokens = local_tokens(issuer, companies)

    async def one(token: str, reach: set[str]) -> bool:
        response = await AsyncClient().get("/api/v3/employees", headers={"Authorization": f"Bearer {token}"})
        seen = {row["companyId"] for row in json.loads(response.content)["employees"]}
        assert_nothing_bound()
        return response.status_code == 200 and seen == reach

    async def burst() -> list[bool]:
        tasks = [one(token, reach) for token, reach in tokens * 4]
        results = await asyncio.gather(*tasks)
        assert_nothing_bound()
        return list(results)

    # async_to_sync runs the views' sync parts on this thread, where the test database lives.
    results = async_to_sync(burst)()
    for ok in results:
        record.case(ok)
    assert all(results)
    assert_nothing_bound()


def test_concurrent_writes_land_in_their_own_company(served, issuer, world, record):
    """Every company creates employees at once; each row lands in its caller's company, seen by it alone."""
    import uuid

    from .conftest import READ_WRITE

    marker = uuid.uuid4().hex[:8]
    tokens = {company: issuer.make_token(company, scopes=READ_WRITE) for company in world.companies}

    def create(job: tuple[str, int]) -> tuple[str, str | None]:
        company, n = job
        body = {
            "email": f"w{n}-{marker}@{company[:8]}.example",
            "legalId": f"W{n}{marker}",
            "name": "W",
            "surname": "W",
        }
        status, _, content, _ = served.request(
            "POST",
            f"/api/v3/companies/{company}/employees",
            [("Authorization", f"Bearer {tokens[company]}"), ("Content-Type", "application/json")],
            json.dumps(body).encode(),
        )
        payload = json.loads(content) if status == 201 else {}
        return company, payload.get("id") if payload.get("companyId") == company else None

    jobs = [(company, n) for n in range(4) for company in world.companies]
    try:
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            created = list(pool.map(create, jobs))
        for _, row in created:
            record.case(row is not None)
        assert all(row for _, row in created), created
        mine = {company: {row for c, row in created if c == company} for company in world.companies}
        for company, token in tokens.items():
            status, payload = served.get_json("/api/v3/employees?pageSize=200", token)
            assert status == 200
            seen = {row["id"] for row in payload["employees"]}
            foreign = set().union(*(rows for other, rows in mine.items() if other != company)) & seen
            record.case(mine[company] <= seen and not foreign)
            assert mine[company] <= seen and not foreign
    finally:
        world.database.query("DELETE FROM api_employee WHERE email LIKE %s", [f"%-{marker}@%"])
