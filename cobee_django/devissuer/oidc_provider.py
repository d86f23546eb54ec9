"""The dev issuer as an OpenID provider: the authorization-code flow the admin's staff sign-in uses.

For development and tests only, like the rest of the dev issuer. It serves exactly one relying
party, this project's own admin (``OIDC_RP_CLIENT_ID`` / ``OIDC_RP_CLIENT_SECRET``), and redirects
only to that admin's callback on the host the browser used. People are :class:`DevPerson` rows;
the sign-in page lists them instead of asking for a password.

- ``GET /authorize``: checks the request, shows the people; ``POST /authorize`` signs one in and
  redirects back with a one-time code (kept 60 seconds in the cache);
- ``POST /oauth/token`` with ``grant_type=authorization_code`` (dispatched here by the token
  view): the client's credentials, the code, the same ``redirect_uri`` and the PKCE verifier buy an
  RS256 ID token signed with the dev issuer's key, and an opaque access token for userinfo;
- ``GET /userinfo``: the person's claims for that access token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from cobee_django.conf import get_settings

from . import conf, keys
from .people import DevPerson

__all__: list[str] = []

GRANT_TYPE = "authorization_code"
CODE_TTL = 60
ID_TOKEN_TTL = 300
_CODE_PREFIX = "devissuer:code:"
_ACCESS_PREFIX = "devissuer:userinfo:"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)


def discovery_fields(base: str) -> dict[str, Any]:
    """What the discovery document adds for OpenID Connect (``base`` ends with ``/``)."""
    return {
        "authorization_endpoint": f"{base}authorize",
        "userinfo_endpoint": f"{base}userinfo",
        # Only the authorization-code flow: no implicit ("token") responses are ever issued.
        "response_types_supported": ["code"],
        "grant_types_supported": ["client_credentials", GRANT_TYPE],
        "scopes_supported": ["openid", "email", "profile"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "name", "given_name", "family_name", "email", "email_verified"],
    }


#: The admin's sign-in settings (mozilla-django-oidc's, and the ID tokens' issuer) and the discovery
#: document's field each comes from.
OIDC_SETTING_FIELDS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
    "ADMIN_OIDC_ISSUER": "issuer",
}


def oidc_settings(document: Mapping[str, Any]) -> dict[str, str]:
    """The admin's five OpenID settings from a provider's discovery document (the dev issuer's or Auth0's).

    ``ADMIN_OIDC_ISSUER`` goes in ``COBEE_DJANGO``, the others at the top level of the settings.
    Raises ``ValueError`` when the document lacks one of the fields or it is not a string.
    """
    found: dict[str, str] = {}
    for setting, field in OIDC_SETTING_FIELDS.items():
        value = document.get(field)
        if not isinstance(value, str) or not value:
            raise ValueError(f"The discovery document has no {field!r}.")
        found[setting] = value
    return found


def _client_id() -> str | None:
    return getattr(settings, "OIDC_RP_CLIENT_ID", None)


def _callback_path() -> str | None:
    try:
        return reverse("oidc_authentication_callback")
    except NoReverseMatch:
        return None


def _redirect_uri_allowed(request: HttpRequest, redirect_uri: str) -> bool:
    # An open redirector would hand codes to anyone: only this project's own callback, same host.
    parts = urlsplit(redirect_uri)
    return (
        parts.scheme in {"http", "https"}
        and parts.netloc == request.get_host()
        and parts.path == _callback_path()
        and not parts.query
        and not parts.fragment
    )


class _Refusal(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _checked(request: HttpRequest, params: dict[str, str]) -> None:
    """Refuse a request whose client or redirect_uri is not this project's admin."""
    if not _client_id() or params.get("client_id") != _client_id():
        raise _Refusal("unauthorized_client", "Unknown client.")
    if not _redirect_uri_allowed(request, params.get("redirect_uri", "")):
        raise _Refusal("invalid_request", "This redirect_uri is not registered.")


def _error_redirect(params: dict[str, str], error: str, description: str) -> HttpResponse:
    query = {"error": error, "error_description": description}
    if params.get("state"):
        query["state"] = params["state"]
    return HttpResponseRedirect(f"{params['redirect_uri']}?{urlencode(query)}")


@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest) -> HttpResponse:
    """The sign-in page: pick a dev person, go back to the admin with a code."""
    conf.require_serving()
    source = request.GET if request.method == "GET" else request.POST
    params = {name: source.get(name, "") for name in _AUTHORIZE_PARAMS}
    try:
        _checked(request, params)
    except _Refusal as refusal:
        # RFC 6749 4.1.2.1: never redirect to an unverified redirect_uri.
        return render(request, "cobee_devissuer/authorize.html", {"error": refusal.description}, status=400)
    if params["response_type"] != "code":
        return _error_redirect(params, "unsupported_response_type", "Only the code flow is served.")
    if "openid" not in params["scope"].split():
        return _error_redirect(params, "invalid_scope", "The openid scope is required.")
    if params["code_challenge"] and params["code_challenge_method"] != "S256":
        return _error_redirect(params, "invalid_request", "Only S256 code challenges are supported.")
    if request.method == "GET":
        people = list(DevPerson.objects.all())
        return render(request, "cobee_devissuer/authorize.html", {"people": people, "params": params})
    person = DevPerson.objects.filter(subject=request.POST.get("person", "")).first()
    if person is None:
        return _error_redirect(params, "access_denied", "No such person.")
    code = secrets.token_urlsafe(32)
    cache.set(
        f"{_CODE_PREFIX}{code}",
        {
            "subject": person.subject,
            "client_id": params["client_id"],
            "redirect_uri": params["redirect_uri"],
            "nonce": params["nonce"],
            "code_challenge": params["code_challenge"],
            "scope": params["scope"],
            "auth_time": int(time.time()),
        },
        CODE_TTL,
    )
    query = {"code": code}
    if params["state"]:
        query["state"] = params["state"]
    return HttpResponseRedirect(f"{params['redirect_uri']}?{urlencode(query)}")


def _token_error(error: str, description: str, status: int = 400) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    for name, value in _NO_STORE.items():
        response[name] = value
    return response


def _client_credentials(request: HttpRequest) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except ValueError:
            return "", ""
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    return request.POST.get("client_id", ""), request.POST.get("client_secret", "")


def _pkce_matches(verifier: str, challenge: str) -> bool:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(expected, challenge)


def person_claims(person: DevPerson) -> dict[str, Any]:
    """The profile and tenant claims the provider states about ``person``."""
    cobee = get_settings()
    given, _, family = person.name.partition(" ")
    claims: dict[str, Any] = {
        "sub": person.subject,
        "name": person.name,
        "given_name": given,
        "family_name": family,
        "email": person.email,
        "email_verified": bool(person.email),
    }
    metadata = {}
    if person.company_id is not None:
        metadata["companyId"] = str(person.company_id)
    if person.corporation_id is not None:
        metadata["corporationId"] = str(person.corporation_id)
    if metadata:
        claims[cobee.metadata_claim] = metadata
    if person.cobee_staff and cobee.admin_staff_claim:
        claims[cobee.admin_staff_claim] = True
    return claims


def exchange_code(request: HttpRequest) -> HttpResponse:
    """``POST /oauth/token`` with ``grant_type=authorization_code`` (RFC 6749 4.1.3, OIDC Core 3.1.3)."""
    conf.require_serving()
    client_id, secret = _client_credentials(request)
    expected_secret = getattr(settings, "OIDC_RP_CLIENT_SECRET", None) or ""
    if (
        not _client_id()
        or client_id != _client_id()
        or not expected_secret
        or not hmac.compare_digest(secret.encode(), expected_secret.encode())
    ):
        return _token_error("invalid_client", "Client authentication failed.", status=401)
    code = request.POST.get("code", "")
    key = f"{_CODE_PREFIX}{code}"
    grant = cache.get(key) if code else None
    # One use only: whoever deletes the code first gets the tokens.
    if grant is None or not cache.delete(key):
        return _token_error("invalid_grant", "The code is unknown, used or expired.")
    if grant["client_id"] != client_id or grant["redirect_uri"] != request.POST.get("redirect_uri"):
        return _token_error("invalid_grant", "The code was issued for another client or redirect_uri.")
    if grant["code_challenge"] and not _pkce_matches(request.POST.get("code_verifier", ""), grant["code_challenge"]):
        return _token_error("invalid_grant", "The PKCE code verifier does not match.")
    person = DevPerson.objects.filter(subject=grant["subject"]).first()
    if person is None:
        return _token_error("invalid_grant", "The person is gone.")
    now = int(time.time())
    claims = {
        **person_claims(person),
        "iss": conf.served_issuer().issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + ID_TOKEN_TTL,
        "auth_time": grant["auth_time"],
    }
    if grant["nonce"]:
        claims["nonce"] = grant["nonce"]
    access_token = secrets.token_urlsafe(32)
    cache.set(f"{_ACCESS_PREFIX}{access_token}", person.subject, ID_TOKEN_TTL)
    response = JsonResponse(
        {
            "access_token": access_token,
            "id_token": keys.get_issuer().sign(claims),
            "token_type": "Bearer",
            "expires_in": ID_TOKEN_TTL,
            "scope": grant["scope"],
        }
    )
    for name, value in _NO_STORE.items():
        response[name] = value
    return response


@csrf_exempt
@require_http_methods(["GET", "POST"])
def userinfo(request: HttpRequest) -> HttpResponse:
    """The claims about the person an access token from :func:`exchange_code` was issued to."""
    conf.require_serving()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    subject = cache.get(f"{_ACCESS_PREFIX}{token}") if scheme.lower() == "bearer" and token else None
    person = DevPerson.objects.filter(subject=subject).first() if subject else None
    if person is None:
        response = JsonResponse({"error": "invalid_token"}, status=401)
        response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    return JsonResponse(person_claims(person))
