from django.contrib import admin
from django.urls import include, path
from rest_framework.routers import DefaultRouter

from payroll.views import DepartmentViewSet, EmployeeViewSet

router = DefaultRouter()
# The company is part of every URL: CanAccessCompany answers 403 for a company the token cannot reach.
router.register(r"companies/(?P<companyId>[^/.]+)/departments", DepartmentViewSet, basename="department")
router.register(r"companies/(?P<companyId>[^/.]+)/employees", EmployeeViewSet, basename="employee")

urlpatterns = [
    path("admin/", admin.site.urls),
    # The admin's company switcher.
    path("cobee/", include("cobee_django.urls")),
    path("api/", include(router.urls)),
    # The development token issuer: key set, discovery, /oauth/token (remove in production).
    path("", include("cobee_django.devissuer.urls")),
]
