"""The employees API in Django Ninja, sync (``/api/v3/ninja/``) and async (``/api/v3/ninja-async/``).

Secured with ``cobee_django.contrib.ninja`` only: ``TokenAuth`` on each router checks the token, the
path's company or corporation and the scopes (read scopes for GET, write scopes for the others);
``TenantMiddleware`` binds the tenant. Its OpenAPI document lists each operation's scopes.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema

try:  # Ninja 1.6+: a status and a body; older versions take the tuple
    from ninja import Status
except ImportError:  # pragma: no cover - older Ninja
    Status = None

from cobee_django.contrib.ninja import AsyncTokenAuth, NinjaAPI, TokenAuth

from . import surfaces
from .surfaces import READ, WRITE


class EmployeeIn(Schema):
    email: str
    legalId: str
    name: str
    surname: str


class EmployeePatch(Schema):
    email: str | None = None
    legalId: str | None = None
    name: str | None = None
    surname: str | None = None


def _answer(status: int, body: dict[str, Any] | None) -> Any:
    if body is None:
        return HttpResponse(status=204)
    return Status(status, body) if Status is not None else (status, body)


def _patch(body: EmployeePatch) -> dict[str, Any]:
    return body.model_dump(exclude_none=True)


# --- sync --------------------------------------------------------------------------------------------

employees = Router(auth=TokenAuth(read_scopes=READ, write_scopes=WRITE), tags=["employees"])
corporations = Router(auth=TokenAuth(read_scopes=READ), tags=["corporations"])


@employees.get("/companies/{companyId}/employees", response={200: dict})
def list_employees(request: HttpRequest, companyId: str) -> Any:
    return surfaces.list_employees(companyId)


@employees.post("/companies/{companyId}/employees", response={201: dict, 400: dict})
def create_employee(request: HttpRequest, companyId: str, body: EmployeeIn) -> Any:
    return _answer(*surfaces.create_employee(companyId, body.model_dump()))


@employees.get("/companies/{companyId}/employees/{employeeId}", response={200: dict, 404: dict})
def get_employee(request: HttpRequest, companyId: str, employeeId: str) -> Any:
    return _answer(*surfaces.employee_detail(companyId, employeeId, "GET", {}))


@employees.patch("/companies/{companyId}/employees/{employeeId}", response={200: dict, 400: dict, 404: dict})
def patch_employee(request: HttpRequest, companyId: str, employeeId: str, body: EmployeePatch) -> Any:
    return _answer(*surfaces.employee_detail(companyId, employeeId, "PATCH", _patch(body)))


@employees.delete("/companies/{companyId}/employees/{employeeId}", response={204: None, 404: dict})
def delete_employee(request: HttpRequest, companyId: str, employeeId: str) -> Any:
    return _answer(*surfaces.employee_detail(companyId, employeeId, "DELETE", {}))


@corporations.get("/corporations/{corporationId}/consumptions", response={200: dict, 400: dict})
def consumptions(request: HttpRequest, corporationId: str, payroll: str = "") -> Any:
    return _answer(*surfaces.consumption_report(corporationId, payroll))


api = NinjaAPI(title="Partner API (Ninja)", urls_namespace="ninja")
api.add_router("", employees)
api.add_router("", corporations)


# --- async -------------------------------------------------------------------------------------------

async_employees = Router(auth=AsyncTokenAuth(read_scopes=READ, write_scopes=WRITE), tags=["employees"])
async_corporations = Router(auth=AsyncTokenAuth(read_scopes=READ), tags=["corporations"])


@async_employees.get("/companies/{companyId}/employees", response={200: dict})
async def alist_employees(request: HttpRequest, companyId: str) -> Any:
    return await surfaces.alist_employees(companyId)


@async_employees.post("/companies/{companyId}/employees", response={201: dict, 400: dict})
async def acreate_employee(request: HttpRequest, companyId: str, body: EmployeeIn) -> Any:
    return _answer(*await surfaces.acreate_employee(companyId, body.model_dump()))


@async_employees.get("/companies/{companyId}/employees/{employeeId}", response={200: dict, 404: dict})
async def aget_employee(request: HttpRequest, companyId: str, employeeId: str) -> Any:
    return _answer(*await surfaces.aemployee_detail(companyId, employeeId, "GET", {}))


@async_employees.patch("/companies/{companyId}/employees/{employeeId}", response={200: dict, 400: dict, 404: dict})
async def apatch_employee(request: HttpRequest, companyId: str, employeeId: str, body: EmployeePatch) -> Any:
    return _answer(*await surfaces.aemployee_detail(companyId, employeeId, "PATCH", _patch(body)))


@async_employees.delete("/companies/{companyId}/employees/{employeeId}", response={204: None, 404: dict})
async def adelete_employee(request: HttpRequest, companyId: str, employeeId: str) -> Any:
    return _answer(*await surfaces.aemployee_detail(companyId, employeeId, "DELETE", {}))


@async_corporations.get("/corporations/{corporationId}/consumptions", response={200: dict, 400: dict})
async def aconsumptions(request: HttpRequest, corporationId: str, payroll: str = "") -> Any:
    return _answer(*await surfaces.aconsumption_report(corporationId, payroll))


async_api = NinjaAPI(title="Partner API (Ninja, async)", urls_namespace="ninja-async")
async_api.add_router("", async_employees)
async_api.add_router("", async_corporations)
