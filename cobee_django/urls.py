"""URLs of cobee_django's admin pieces: ``path("cobee/", include("cobee_django.urls"))``."""

from __future__ import annotations

from django.urls import path

from .switcher import switch_tenant

app_name = "cobee_django"

urlpatterns = [
    path("admin/switch-company/", switch_tenant, name="switch_tenant"),
]
