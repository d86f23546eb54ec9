"""The project's admin site (the tenant registry) next to the test API: edit in one, read in the other.

Used as the URLconf of the admin membership tests (``@pytest.mark.urls``).
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from tests.testapp import apiviews

urlpatterns = [
    path("admin/", admin.site.urls),
    path("cobee/", include("cobee_django.urls")),
    *apiviews.urlpatterns,
]
