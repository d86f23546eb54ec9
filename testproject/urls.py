from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # The admin's company switcher.
    path("cobee/", include("cobee_django.urls")),
]
