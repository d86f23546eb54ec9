"""``/api/v3/``: the routes of Cobee's Partner API that the test project implements."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "api"

urlpatterns = [
    path("companies/<str:companyId>/employees", views.CompanyEmployees.as_view(), name="company-employees"),
    path(
        "companies/<str:companyId>/employees/<str:employeeId>",
        views.CompanyEmployee.as_view(),
        name="company-employee",
    ),
    path("companies/<str:companyId>/benefit-models", views.CompanyBenefitModels.as_view(), name="benefit-models"),
    path(
        "companies/<str:companyId>/benefit-models/<str:benefitModelId>",
        views.CompanyBenefitModel.as_view(),
        name="benefit-model",
    ),
    path(
        "corporations/<str:corporationId>/consumptions",
        views.CorporationConsumptions.as_view(),
        name="corporation-consumptions",
    ),
    path("employees", views.Employees.as_view(), name="employees"),
]
