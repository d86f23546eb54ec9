from django.urls import path

from . import views

urlpatterns = [
    path("companies/<str:companyId>/departments", views.CompanyDepartments.as_view()),
    path("companies/<str:companyId>/departments/<str:pk>", views.CompanyDepartment.as_view()),
    path("companies/<str:companyId>/employees", views.CompanyEmployees.as_view()),
    path("departments", views.AllDepartments.as_view()),
    path("departments/<str:pk>", views.AnyDepartment.as_view()),
    path("corporations/<str:corporationId>", views.CorporationView.as_view()),
    path("scoped", views.ScopedView.as_view()),
    path("read-write", views.ReadWriteView.as_view()),
    path("unconfigured", views.UnconfiguredView.as_view()),
    path("composed", views.ComposedView.as_view()),
    path("not-scoped", views.NotScopedView.as_view()),
    path("boom", views.Boom.as_view()),
]

urlpatterns += [
    path("token/departments", views.ForgotPermissions.as_view()),
    path("token/write-elsewhere", views.WriteElsewhere.as_view()),
    path("token/companies/<str:companyId>/departments", views.TokenCompanyDepartments.as_view()),
    path("list-style/companies/<str:companyId>/departments", views.ListStyleDepartments.as_view()),
    path("or-style/companies/<str:companyId>/departments", views.OrStyleDepartments.as_view()),
]
