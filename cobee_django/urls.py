"""URLs of cobee_django's admin pieces: ``path("cobee/", include("cobee_django.urls"))``."""

from __future__ import annotations

from django.urls import path

from .staff.switcher import switch_tenant

__all__: list[str] = []

app_name = "cobee_django"

urlpatterns = [
    path("admin/switch-company/", switch_tenant, name="switch_tenant"),
]
