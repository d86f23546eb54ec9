"""The test project's URLs plus the baseline the request benchmark compares its list endpoint with."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.urls import path
from rest_framework import generics

from testproject.api.models import Employee
from testproject.api.pagination import EmployeePagination
from testproject.api.serializers import EmployeeSerializer
from testproject.api.views import filter_employees
from testproject.urls import urlpatterns as project_urlpatterns


class BaselineEmployees(generics.ListAPIView[Employee]):
    """The same list as ``GET /api/v3/companies/{companyId}/employees``, without any of the app.

    No authentication, no permission classes, no tenant: a plain, unscoped queryset and a
    hand-written company filter, as a project without cobee_django would write it.
    """

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    serializer_class = EmployeeSerializer
    pagination_class = EmployeePagination

    def get_queryset(self) -> QuerySet[Employee]:
        company_id = uuid.UUID(self.kwargs["companyId"])
        return filter_employees(QuerySet(model=Employee).filter(company_id=company_id), self.request)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "company_id": self.kwargs["companyId"]}


# After the project's patterns, so resolving the baseline's URL costs at least what the candidate's does.
urlpatterns = [
    *project_urlpatterns,
    path("api/v3-baseline/companies/<str:companyId>/employees", BaselineEmployees.as_view()),
]
