"""Background work of the test project: a company's payroll report, built by a Celery worker."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Sum

from cobee_django.models import Company
from cobee_django.state import require_tenant
from testproject.celery import app

from .models import Consumption, Employee, payroll_validator


@app.task(name="api.build_payroll_report")
def build_payroll_report(payroll: str) -> dict[str, Any]:
    """Totals of one payroll cycle's consumptions per employee, for the one company bound.

    No company id is an argument: the tenant comes with the task's message (queued inside a
    request, or by ``fan_out_to_companies`` for a monthly run), so a task can never be pointed
    at a company its sender could not reach.
    """
    payroll_validator(payroll)
    company_id = require_tenant().single_company_id
    if company_id is None:
        raise ValueError("A payroll report is built for one company; fan out per company.")
    totals = (
        Consumption.objects.filter(payroll=payroll)
        .values("employee_id")
        .annotate(total=Sum("amount_in_cents"), count=Count("id"))
        .order_by("employee_id")
    )
    names = {e.id: f"{e.name} {e.surname}" for e in Employee.objects.filter(id__in=[t["employee_id"] for t in totals])}
    employees = [
        {
            "employeeId": str(t["employee_id"]),
            "name": names[t["employee_id"]],
            "consumptions": t["count"],
            "total": {"amountInCents": t["total"], "currency": "EUR"},
        }
        for t in totals
    ]
    return {
        "companyId": str(company_id),
        "companyName": Company.objects.get(pk=company_id).name,
        "payroll": payroll,
        "employees": employees,
        "total": {"amountInCents": sum(e["total"]["amountInCents"] for e in employees), "currency": "EUR"},
    }
