from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from testproject.api import ninja_api

urlpatterns = [
    path("admin/", admin.site.urls),
    # The admin's company switcher.
    path("cobee/", include("cobee_django.urls")),
    # The development token issuer answers 404 when it is off (COBEE_DJANGO_JWKS_URL set).
    path("", include("cobee_django.devissuer.urls")),
    # The slice of Cobee's Partner API the test project implements.
    path("api/v3/", include("testproject.api.urls")),
    # The same routes in Django Ninja, sync and async (outside the app's namespace: Ninja names its own).
    path("api/v3/ninja/", ninja_api.api.urls),
    path("api/v3/ninja-async/", ninja_api.async_api.urls),
    # The OpenAPI document, with the token URL and each operation's scopes.
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
]

if getattr(settings, "OIDC_RP_CLIENT_ID", None):
    # Staff sign-in through OpenID Connect (the admin's login page links to it).
    urlpatterns.append(path("oidc/", include("mozilla_django_oidc.urls")))
