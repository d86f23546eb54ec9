"""``/api/v3/``: the routes of Cobee's Partner API that the test project implements."""

from __future__ import annotations

from django.urls import path

from . import surfaces, views

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

# The same employees routes served every other way (testproject.api.surfaces; Ninja's in testproject.urls).
SURFACES = {
    "plain": (surfaces.employees, surfaces.employee, surfaces.consumptions),
    "plain-async": (surfaces.aemployees, surfaces.aemployee, surfaces.aconsumptions),
    "cbv": (surfaces.EmployeesView.as_view(), surfaces.EmployeeView.as_view(), surfaces.ConsumptionsView.as_view()),
    "cbv-async": (
        surfaces.AsyncEmployeesView.as_view(),
        surfaces.AsyncEmployeeView.as_view(),
        surfaces.AsyncConsumptionsView.as_view(),
    ),
    "adrf": (surfaces.AdrfEmployees.as_view(), surfaces.AdrfEmployee.as_view(), surfaces.AdrfConsumptions.as_view()),
}
for prefix, (collection, item, report) in SURFACES.items():
    urlpatterns += [
        path(f"{prefix}/companies/<str:companyId>/employees", collection),
        path(f"{prefix}/companies/<str:companyId>/employees/<str:employeeId>", item),
        path(f"{prefix}/corporations/<str:corporationId>/consumptions", report),
    ]
urlpatterns += [path("unguarded/companies/<str:companyId>/employees", surfaces.forgot_the_decorator)]
