"""The cross-tenant matrix: every caller tries every other tenant's ids, everywhere, over HTTP.

Callers: a token for each seeded company (two corporations of three and two companies, and a company
without corporation) and a corporation-wide token for each corporation. Each one tries, for every
company it may not reach, the ids of that company's rows in the path, in the body, in the filters and
in foreign keys, with every method, and tries to move its own rows to other companies with PATCH.

Held means: a denial (403 for a company the caller does not reach, 404 for another company's row
under its own company), or an answer holding only the caller's rows; no body ever names another
tenant's row; and the database, read back with plain SQL, is unchanged afterwards.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import READ_WRITE

pytestmark = pytest.mark.adversarial

PAYROLL = "2026-10"


@dataclass(frozen=True)
class Caller:
    name: str
    company: str
    corporation: str | None  # set for corporation-wide tokens


def callers(world) -> list[Caller]:
    found = []
    for company, data in world.companies.items():
        found.append(Caller(f"company {data['name']}", company, None))
    for corporation in world.corporations:
        company = world.companies_of(corporation)[0]
        found.append(Caller(f"corporation of {world.companies[company]['name']}", company, corporation))
    return found


def reachable(world, caller: Caller) -> set[str]:
    return set(world.companies_of(caller.corporation)) if caller.corporation else {caller.company}


def new_employee(**fields: Any) -> dict[str, Any]:
    marker = uuid.uuid4().hex[:12]
    return {
        "email": f"intruder-{marker}@attack.example",
        "legalId": marker[:9].upper(),
        "name": "Mallory",
        "surname": "Intruder",
        **fields,
    }


class Session:
    """One caller's requests, each checked for leaks of the identifiers it must never see."""

    def __init__(self, served, token: str, foreign: set[str], record) -> None:
        self.served = served
        self.token = token
        self.foreign = foreign
        self.record = record
        self.failures: list[str] = []

    def call(self, method: str, path: str, body: Any = None, accept: str = "application/json") -> tuple[int, Any]:
        headers = [("Authorization", f"Bearer {self.token}"), ("Accept", accept)]
        data = None
        if body is not None:
            headers.append(("Content-Type", "application/json"))
            data = json.dumps(body).encode()
        status, _, content, _ = self.served.request(method, f"/api/v3/{path}", headers, data)
        text = content.decode("utf-8", "replace")
        # What the caller sent may come back (a field error names the bad id); anything else may not.
        sent = path + (data or b"").decode()
        leaked = sorted(value for value in self.foreign if value in text and value not in sent)
        if leaked:
            self.fail(f"{method} {path}: the answer names another tenant's {leaked[:3]}")
        try:
            return status, json.loads(content) if content else None
        except ValueError:
            return status, text

    def expect(self, label: str, ok: bool, detail: Any = "") -> None:
        self.record.case(ok)
        if not ok:
            self.fail(f"{label}: {detail}")

    def fail(self, message: str) -> None:
        self.failures.append(message)


def foreign_identifiers(world, allowed: set[str]) -> set[str]:
    """Ids, emails and legal ids of rows of companies outside ``allowed`` (none shared with allowed ones)."""
    own = set()
    for company in allowed:
        data = world.companies[company]
        own |= {data["name"], *data["benefit_models"]}
        own |= {value for employee in data["employees"] for value in employee.values()}
    foreign = set()
    for company, data in world.companies.items():
        if company in allowed:
            continue
        foreign |= {data["name"], *data["benefit_models"]}
        foreign |= {value for employee in data["employees"] for value in employee.values()}
    return foreign - own


@pytest.fixture(scope="module")
def before(world):
    return world.database.snapshot()


@pytest.fixture(params=range(8), ids=lambda i: f"caller{i}")
def caller(request, world):
    found = callers(world)
    assert len(found) == 8, "the seed has six companies and two corporations"
    return found[request.param]


def test_a_caller_reaches_nothing_of_other_tenants(served, world, issuer, caller, before, record):
    allowed = reachable(world, caller)
    others = [c for c in world.company_ids() if c not in allowed]
    assert others
    token = issuer.make_token(caller.company, caller.corporation, scopes=READ_WRITE)
    session = Session(served, token, foreign_identifiers(world, allowed), record)
    own = caller.company
    own_employee = world.companies[own]["employees"][0]["id"]

    def attack(other: str) -> None:
        data = world.companies[other]
        employee = data["employees"][0]
        model = data["benefit_models"][0]
        denied = {403}
        # Another company in the path: every method is refused before anything is read or written.
        for method, path, body in [
            ("GET", f"companies/{other}/employees", None),
            ("HEAD", f"companies/{other}/employees", None),
            ("OPTIONS", f"companies/{other}/employees", None),
            ("POST", f"companies/{other}/employees", new_employee()),
            ("GET", f"companies/{other}/employees?email={employee['email']}", None),
            ("GET", f"companies/{other}/employees/{employee['id']}", None),
            ("PATCH", f"companies/{other}/employees/{employee['id']}", {"name": "Owned"}),
            ("PUT", f"companies/{other}/employees/{employee['id']}", new_employee()),
            ("DELETE", f"companies/{other}/employees/{employee['id']}", None),
            ("GET", f"companies/{other}/benefit-models", None),
            ("GET", f"companies/{other}/benefit-models/{model}", None),
            # Another company's row under a company the caller does reach (path mixing).
            ("GET", f"companies/{other}/employees/{own_employee}", None),
        ]:
            status, payload = session.call(method, path, body)
            session.expect(f"{method} {path}", status in denied, (status, payload))
        # Another company's row under the caller's own company: not found, as if it did not exist.
        for method, path, body in [
            ("GET", f"companies/{own}/employees/{employee['id']}", None),
            ("PATCH", f"companies/{own}/employees/{employee['id']}", {"name": "Owned"}),
            ("DELETE", f"companies/{own}/employees/{employee['id']}", None),
            ("GET", f"companies/{own}/benefit-models/{model}", None),
        ]:
            status, payload = session.call(method, path, body)
            session.expect(f"{method} {path}", status == 404, (status, payload))
        # Another company's ids in filters: an empty answer, or only the caller's rows.
        for path in [
            f"employees?companyId={other}",
            f"employees?email={employee['email']}",
            f"employees?legalId={employee['legalId']}",
            f"companies/{own}/employees?companyId={other}",
            f"companies/{own}/employees?email={employee['email']}",
        ]:
            status, payload = session.call("GET", path)
            rows = payload.get("employees") if isinstance(payload, dict) else None
            ok = status == 200 and rows is not None and {row["companyId"] for row in rows} <= allowed
            session.expect(f"GET {path}", ok, (status, payload))
        # Another company's rows as foreign keys in the body: a field error, nothing written, and the
        # same answer as for an id that exists nowhere (no existence oracle).
        nowhere = str(uuid.uuid4())
        for method, path, body in [
            ("POST", f"companies/{own}/employees", new_employee(modelId=model)),
            ("PATCH", f"companies/{own}/employees/{own_employee}", {"modelId": model}),
        ]:
            status, payload = session.call(method, path, body)
            ok = status == 400 and isinstance(payload, dict) and "modelId" in payload
            session.expect(f"{method} {path} with a foreign modelId", ok, (status, payload))
            unknown = session.call(method, path, {**body, "modelId": nowhere})
            same = unknown == (status, json.loads(json.dumps(payload).replace(model, nowhere)))
            session.expect(f"{method} {path}: a foreign modelId answers like an unknown one", same, (unknown, payload))
        for path in [f"companies/{own}/employees/{{}}", f"companies/{own}/benefit-models/{{}}"]:
            row = employee["id"] if "employees" in path else model
            answers = session.call("GET", path.format(row)), session.call("GET", path.format(nowhere))
            session.expect(f"GET {path}: a foreign id answers like an unknown one", answers[0] == answers[1], answers)
        # Moving the caller's own row to another company: the company never comes from the body.
        for field_name in ("companyId", "company", "company_id"):
            status, payload = session.call("PATCH", f"companies/{own}/employees/{own_employee}", {field_name: other})
            ok = status == 200 and isinstance(payload, dict) and payload.get("companyId") == own
            session.expect(f"PATCH moving a row with {field_name}", ok, (status, payload))

    # One thread per other company: the servers answer concurrently, as they would in production.
    with ThreadPoolExecutor(max_workers=len(others)) as pool:
        list(pool.map(attack, others))

    # Corporation reports: only the caller's corporation, and only its companies.
    for corporation in world.corporations:
        status, payload = session.call("GET", f"corporations/{corporation}/consumptions?payroll={PAYROLL}")
        if corporation == caller.corporation:
            companies = {entry["companyId"] for entry in payload["companies"]} if status == 200 else None
            session.expect(f"own corporation {corporation}", companies == allowed, (status, payload))
        else:
            session.expect(f"corporation {corporation}", status == 403, (status, payload))
        status, payload = session.call(
            "GET", f"corporations/{corporation}/consumptions?payroll={PAYROLL}", accept="text/csv"
        )
        if corporation == caller.corporation:
            lines = payload.splitlines()[1:] if status == 200 and isinstance(payload, str) else None
            ok = lines is not None and {line.split(",")[0] for line in lines} == allowed
            session.expect(f"own corporation {corporation} as CSV", ok, (status, payload))
        else:
            session.expect(f"corporation {corporation} as CSV", status == 403, (status, payload))

    # Creating with another company in the body: created, but in the caller's company.
    body = new_employee(companyId=others[0])
    status, payload = session.call("POST", f"companies/{own}/employees", body)
    ok = status == 201 and payload.get("companyId") == own
    session.expect("POST with a foreign companyId in the body", ok, (status, payload))
    rows = world.database.query("SELECT company_id FROM api_employee WHERE email = %s", [body["email"]])
    stored = [str(row[0]).replace("-", "") for row in rows]
    session.expect("the created row is in the caller's company", stored == [own.replace("-", "")], rows)
    world.database.query("DELETE FROM api_employee WHERE email = %s RETURNING id", [body["email"]])

    assert not session.failures, "\n".join(session.failures[:20]) + "\n" + served.log()[-3000:]


def test_the_database_is_unchanged(served, world, before):
    assert world.database.snapshot() == before
