"""The employees API served without DRF, and with async DRF: the same routes, every way of serving.

Each surface mounts ``companies/{companyId}/employees[/{employeeId}]`` and
``corporations/{corporationId}/consumptions`` under its own prefix (``plain/``, ``plain-async/``,
``cbv/``, ``cbv-async/``, ``adrf/``; Ninja's are in ``ninja_api``), secured with cobee_django's
decorator, mixin or DRF classes and nothing else: no glue. The rows come from the tenant-scoped
managers, sync or async ORM, narrowed to the path's company like ``CompanyFromURLMixin`` does.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from adrf.views import APIView as AsyncAPIView
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import View
from rest_framework.request import Request
from rest_framework.response import Response

from cobee_django.models import Company
from cobee_django.permissions import CanAccessCompany, CanAccessCorporation, HasScopes, HasTenant
from cobee_django.state import require_tenant
from cobee_django.uuids import parse_uuid
from cobee_django.views import TokenRequiredMixin, token_required

from .models import Consumption, Employee, EmployeeState

READ = ["read:employees"]
WRITE = ["write:employees"]
#: The writable fields, as the API names them and as the model does.
FIELDS = {"email": "email", "legalId": "legal_id", "name": "name", "surname": "surname"}
PAYROLL = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


# --- the resource, sync and async ---------------------------------------------------------------


def employee_json(employee: Employee) -> dict[str, Any]:
    return {
        "id": str(employee.id),
        "companyId": str(employee.company_id),
        "email": employee.email,
        "legalId": employee.legal_id,
        "name": employee.name,
        "surname": employee.surname,
        "state": employee.state,
    }


def read_body(body: bytes) -> Any:
    """The JSON body, or ``None`` when it is not JSON (answered 400)."""
    try:
        return json.loads(body or b"{}")
    except ValueError:
        return None


def validate(data: Any, *, partial: bool = False) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The model fields of an employee body, and the errors by API field name."""
    if not isinstance(data, dict):
        return {}, {"detail": ["Send a JSON object."]}
    fields: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for name, attname in FIELDS.items():
        value = data.get(name)
        if value is None:
            if not partial:
                errors[name] = ["This field is required."]
            continue
        if not isinstance(value, str) or not value.strip() or len(value) > 150:
            errors[name] = ["Not a valid string."]
            continue
        fields[attname] = value
    if "email" in fields:
        try:
            validate_email(fields["email"])
        except DjangoValidationError:
            errors["email"] = ["Enter a valid email address."]
    return fields, errors


def duplicates(company_id: uuid.UUID, fields: dict[str, str], exclude: uuid.UUID | None = None) -> dict[str, list[str]]:
    errors = {}
    for name, attname in (("email", "email"), ("legalId", "legal_id")):
        if attname in fields:
            clash = Employee.objects.filter(company_id=company_id, **{f"{attname}__iexact": fields[attname]})
            if clash.exclude(pk=exclude).exists():
                errors[name] = [f"An employee with this {name} already exists in this company."]
    return errors


async def aduplicates(
    company_id: uuid.UUID, fields: dict[str, str], exclude: uuid.UUID | None = None
) -> dict[str, list[str]]:
    errors = {}
    for name, attname in (("email", "email"), ("legalId", "legal_id")):
        if attname in fields:
            clash = Employee.objects.filter(company_id=company_id, **{f"{attname}__iexact": fields[attname]})
            if await clash.exclude(pk=exclude).aexists():
                errors[name] = [f"An employee with this {name} already exists in this company."]
    return errors


def company_rows(company_id: str) -> Any:
    # The decorator checked that the path's company is reachable; narrow a corporation-wide caller to it.
    return Employee.objects.filter(company_id=uuid.UUID(company_id))


def list_employees(company_id: str) -> dict[str, Any]:
    return {"employees": [employee_json(e) for e in company_rows(company_id)]}


async def alist_employees(company_id: str) -> dict[str, Any]:
    rows = company_rows(company_id)
    return {"employees": [employee_json(e) async for e in rows], "count": await rows.acount()}


def create_employee(company_id: str, data: Any) -> tuple[int, dict[str, Any]]:
    fields, errors = validate(data)
    errors = errors or duplicates(uuid.UUID(company_id), fields)
    if errors:
        return 400, errors
    return 201, employee_json(Employee.objects.create(company_id=uuid.UUID(company_id), **fields))


async def acreate_employee(company_id: str, data: Any) -> tuple[int, dict[str, Any]]:
    fields, errors = validate(data)
    errors = errors or await aduplicates(uuid.UUID(company_id), fields)
    if errors:
        return 400, errors
    employee = Employee(company_id=uuid.UUID(company_id), **fields)
    # abulk_create goes through the same write guards as save().
    await Employee.objects.abulk_create([employee])
    return 201, employee_json(employee)


def employee_detail(company_id: str, employee_id: str, method: str, data: Any) -> tuple[int, dict[str, Any] | None]:
    pk = parse_uuid(employee_id)
    employee = company_rows(company_id).filter(pk=pk).first() if pk is not None else None
    if employee is None:
        return 404, {"detail": "Not found."}
    if method == "PATCH":
        fields, errors = validate(data, partial=True)
        errors = errors or duplicates(employee.company_id, fields, exclude=employee.pk)
        if errors:
            return 400, errors
        for attname, value in fields.items():
            setattr(employee, attname, value)
        employee.save()
    elif method == "DELETE":
        employee.state = EmployeeState.REMOVED
        employee.save(update_fields=["state", "updated_at"])
        return 204, None
    return 200, employee_json(employee)


async def aemployee_detail(
    company_id: str, employee_id: str, method: str, data: Any
) -> tuple[int, dict[str, Any] | None]:
    pk = parse_uuid(employee_id)
    employee = await company_rows(company_id).filter(pk=pk).afirst() if pk is not None else None
    if employee is None:
        return 404, {"detail": "Not found."}
    if method == "PATCH":
        fields, errors = validate(data, partial=True)
        errors = errors or await aduplicates(employee.company_id, fields, exclude=employee.pk)
        if errors:
            return 400, errors
        for attname, value in fields.items():
            setattr(employee, attname, value)
        await employee.asave()
    elif method == "DELETE":
        employee.state = EmployeeState.REMOVED
        await employee.asave(update_fields=["state", "updated_at"])
        return 204, None
    return 200, employee_json(employee)


def consumption_report(corporation_id: str, payroll: str) -> tuple[int, dict[str, Any]]:
    if not PAYROLL.fullmatch(payroll):
        return 400, {"payroll": ["A payroll cycle is YYYY-MM."]}
    companies = {c.id: c for c in Company.objects.filter(id__in=require_tenant().company_ids)}
    rows = Consumption.objects.filter(company_id__in=companies, payroll=payroll).order_by("date", "id")
    return 200, report(corporation_id, payroll, companies, list(rows))


async def aconsumption_report(corporation_id: str, payroll: str) -> tuple[int, dict[str, Any]]:
    if not PAYROLL.fullmatch(payroll):
        return 400, {"payroll": ["A payroll cycle is YYYY-MM."]}
    companies = {c.id: c async for c in Company.objects.filter(id__in=require_tenant().company_ids)}
    rows = Consumption.objects.filter(company_id__in=companies, payroll=payroll).order_by("date", "id")
    return 200, report(corporation_id, payroll, companies, [row async for row in rows])


def report(
    corporation_id: str, payroll: str, companies: dict[uuid.UUID, Company], rows: list[Consumption]
) -> dict[str, Any]:
    by_company: dict[uuid.UUID, list[Consumption]] = {company_id: [] for company_id in companies}
    for row in rows:
        by_company[row.company_id].append(row)
    return {
        "corporationId": corporation_id,
        "payroll": payroll,
        "companies": [
            {
                "companyId": str(company.id),
                "companyName": company.name,
                "total": {"amountInCents": sum(r.amount_in_cents for r in by_company[company.id]), "currency": "EUR"},
            }
            for company in sorted(companies.values(), key=lambda c: (c.name, c.id))
        ],
    }


def answer(status: int, body: dict[str, Any] | None) -> HttpResponse:
    return HttpResponse(status=204) if body is None else JsonResponse(body, status=status)


# --- plain function views, sync and async --------------------------------------------------------


@token_required(read_scopes=READ, write_scopes=WRITE)
def employees(request: HttpRequest, companyId: str) -> HttpResponse:
    if request.method == "POST":
        data = read_body(request.body)
        return answer(*create_employee(companyId, data)) if data is not None else bad_json()
    return JsonResponse(list_employees(companyId))


@token_required(read_scopes=READ, write_scopes=WRITE)
def employee(request: HttpRequest, companyId: str, employeeId: str) -> HttpResponse:
    data = read_body(request.body) if request.method == "PATCH" else {}
    if data is None:
        return bad_json()
    return answer(*employee_detail(companyId, employeeId, request.method or "GET", data))


@token_required(read_scopes=READ)
def consumptions(request: HttpRequest, corporationId: str) -> HttpResponse:
    return answer(*consumption_report(corporationId, request.GET.get("payroll", "")))


@token_required(read_scopes=READ, write_scopes=WRITE)
async def aemployees(request: HttpRequest, companyId: str) -> HttpResponse:
    if request.method == "POST":
        data = read_body(request.body)
        return answer(*await acreate_employee(companyId, data)) if data is not None else bad_json()
    return JsonResponse(await alist_employees(companyId))


@token_required(read_scopes=READ, write_scopes=WRITE)
async def aemployee(request: HttpRequest, companyId: str, employeeId: str) -> HttpResponse:
    data = read_body(request.body) if request.method == "PATCH" else {}
    if data is None:
        return bad_json()
    return answer(*await aemployee_detail(companyId, employeeId, request.method or "GET", data))


@token_required(read_scopes=READ)
async def aconsumptions(request: HttpRequest, corporationId: str) -> HttpResponse:
    return answer(*await aconsumption_report(corporationId, request.GET.get("payroll", "")))


def bad_json() -> JsonResponse:
    return JsonResponse({"detail": "The body is not JSON."}, status=400)


# --- class-based views, sync and async --------------------------------------------------------------


class EmployeesView(TokenRequiredMixin, View):
    required_read_scopes = READ
    required_write_scopes = WRITE

    def get(self, request: HttpRequest, companyId: str) -> HttpResponse:
        return JsonResponse(list_employees(companyId))

    def post(self, request: HttpRequest, companyId: str) -> HttpResponse:
        data = read_body(request.body)
        return answer(*create_employee(companyId, data)) if data is not None else bad_json()


class EmployeeView(TokenRequiredMixin, View):
    required_read_scopes = READ
    required_write_scopes = WRITE

    def get(self, request: HttpRequest, companyId: str, employeeId: str) -> HttpResponse:
        return answer(*employee_detail(companyId, employeeId, "GET", {}))

    def patch(self, request: HttpRequest, companyId: str, employeeId: str) -> HttpResponse:
        data = read_body(request.body)
        return answer(*employee_detail(companyId, employeeId, "PATCH", data)) if data is not None else bad_json()

    def delete(self, request: HttpRequest, companyId: str, employeeId: str) -> HttpResponse:
        return answer(*employee_detail(companyId, employeeId, "DELETE", {}))


class ConsumptionsView(TokenRequiredMixin, View):
    required_read_scopes = READ

    def get(self, request: HttpRequest, corporationId: str) -> HttpResponse:
        return answer(*consumption_report(corporationId, request.GET.get("payroll", "")))


class AsyncEmployeesView(TokenRequiredMixin, View):
    required_read_scopes = READ
    required_write_scopes = WRITE

    async def get(self, request: HttpRequest, companyId: str) -> HttpResponse:
        return JsonResponse(await alist_employees(companyId))

    async def post(self, request: HttpRequest, companyId: str) -> HttpResponse:
        data = read_body(request.body)
        return answer(*await acreate_employee(companyId, data)) if data is not None else bad_json()


class AsyncEmployeeView(TokenRequiredMixin, View):
    required_read_scopes = READ
    required_write_scopes = WRITE

    async def get(self, request: HttpRequest, companyId: str, employeeId: str) -> HttpResponse:
        return answer(*await aemployee_detail(companyId, employeeId, "GET", {}))

    async def patch(self, request: HttpRequest, companyId: str, employeeId: str) -> HttpResponse:
        data = read_body(request.body)
        if data is None:
            return bad_json()
        return answer(*await aemployee_detail(companyId, employeeId, "PATCH", data))

    async def delete(self, request: HttpRequest, companyId: str, employeeId: str) -> HttpResponse:
        return answer(*await aemployee_detail(companyId, employeeId, "DELETE", {}))


class AsyncConsumptionsView(TokenRequiredMixin, View):
    required_read_scopes = READ

    async def get(self, request: HttpRequest, corporationId: str) -> HttpResponse:
        return answer(*await aconsumption_report(corporationId, request.GET.get("payroll", "")))


# --- adrf: async DRF views with the package's DRF classes, unchanged -----------------------------------


class AdrfScopes:
    required_read_scopes = READ
    required_write_scopes = WRITE


def drf_answer(status: int, body: dict[str, Any] | None) -> Response:
    return Response(body, status=status)


class AdrfEmployees(AdrfScopes, AsyncAPIView):
    permission_classes = [HasTenant, CanAccessCompany, HasScopes]

    async def get(self, request: Request, companyId: str) -> Response:
        return Response(await alist_employees(companyId))

    async def post(self, request: Request, companyId: str) -> Response:
        return drf_answer(*await acreate_employee(companyId, request.data))


class AdrfEmployee(AdrfScopes, AsyncAPIView):
    permission_classes = [HasTenant, CanAccessCompany, HasScopes]

    async def get(self, request: Request, companyId: str, employeeId: str) -> Response:
        return drf_answer(*await aemployee_detail(companyId, employeeId, "GET", {}))

    async def patch(self, request: Request, companyId: str, employeeId: str) -> Response:
        return drf_answer(*await aemployee_detail(companyId, employeeId, "PATCH", request.data))

    async def delete(self, request: Request, companyId: str, employeeId: str) -> Response:
        return drf_answer(*await aemployee_detail(companyId, employeeId, "DELETE", {}))


class AdrfConsumptions(AsyncAPIView):
    permission_classes = [HasTenant, CanAccessCorporation, HasScopes]
    required_read_scopes = READ

    async def get(self, request: Request, corporationId: str) -> Response:
        return drf_answer(*await aconsumption_report(corporationId, request.query_params.get("payroll", "")))


# --- a view that forgot the decorator: it must fail closed, never serve rows ---------------------------


async def forgot_the_decorator(request: HttpRequest, companyId: str) -> HttpResponse:
    """An ``async def`` view without ``token_required``: nothing reads the token, so nothing is bound."""
    return JsonResponse({"count": await Employee.objects.filter(company_id=companyId).acount()})
