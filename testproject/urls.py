from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # The admin's company switcher.
    path("cobee/", include("cobee_django.urls")),
    # The development token issuer answers 404 when it is off (COBEE_DJANGO_JWKS_URL set).
    path("", include("testproject.devissuer.urls")),
    # The slice of Cobee's Partner API the test project implements.
    path("api/v3/", include("testproject.api.urls")),
]

if getattr(settings, "OIDC_RP_CLIENT_ID", None):
    # Staff sign-in through OpenID Connect (the admin's login page links to it).
    urlpatterns.append(path("oidc/", include("mozilla_django_oidc.urls")))
