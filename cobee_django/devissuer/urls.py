from __future__ import annotations

from django.urls import path

from . import oidc_provider, views

__all__: list[str] = []

app_name = "cobee_devissuer"

urlpatterns = [
    path(".well-known/jwks.json", views.jwks, name="jwks"),
    path(".well-known/openid-configuration", views.openid_configuration, name="openid-configuration"),
    path("oauth/token", views.oauth_token, name="token"),
    path("api/v3/oauth/token", views.cobee_token, name="cobee-token"),
    # OpenID Connect for the admin's staff sign-in (the token endpoint above serves its code grant).
    path("authorize", oidc_provider.authorize, name="authorize"),
    path("userinfo", oidc_provider.userinfo, name="userinfo"),
]
