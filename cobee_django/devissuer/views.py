"""The dev issuer's endpoints: key set, discovery document, and the two token endpoints.

``POST /oauth/token`` speaks Auth0's client-credentials dialect (RFC 6749 section 4.4, errors as
section 5.2); ``POST /api/v3/oauth/token`` speaks Cobee's camelCase one. Both are plain Django
views: they must not go through the API's bearer-token authentication.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_plus

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from .. import dpop
from ..exceptions import NonceRequired, ProofRejected, Reason, ReplayStoreUnavailable
from . import conf, keys, oidc_provider
from .models import DevClient
from .tokens import issue_token

__all__: list[str] = []

GRANT_TYPE = "client_credentials"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An RFC 6749 section 5.2 error answer."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        basic_challenge: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.basic_challenge = basic_challenge
        self.headers = dict(headers or {})

    def response(self) -> JsonResponse:
        response = JsonResponse({"error": self.error, "error_description": self.description}, status=self.status)
        for name, value in NO_STORE.items():
            response[name] = value
        if self.basic_challenge:
            # RFC 6749 5.2: a client that authenticated with the Authorization header gets its scheme back.
            response["WWW-Authenticate"] = 'Basic realm="oauth"'
        for name, value in self.headers.items():
            response[name] = value
        return response


def _invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def _invalid_client(*, basic: bool = False) -> OAuthError:
    # One constant answer for unknown ids and wrong secrets alike.
    return OAuthError("invalid_client", "Client authentication failed.", status=401, basic_challenge=basic)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys_seen = [key for key, _ in pairs]
    if len(keys_seen) != len(set(keys_seen)):
        raise _invalid_request("A parameter is repeated.")
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise _invalid_request("The body is not valid JSON.")


def read_parameters(request: HttpRequest, names: frozenset[str]) -> dict[str, str]:
    """The named string parameters of a form or JSON body; unknown and null ones are ignored."""
    content_type = request.content_type or ""
    if content_type == "application/x-www-form-urlencoded":
        form = request.POST
        raw: Mapping[str, Any] = {}
        found: dict[str, str] = {}
        for name in names & set(form):
            values = form.getlist(name)
            if len(values) > 1:
                raise _invalid_request("A parameter is repeated.")
            found[name] = values[0]
        raw = found
    elif content_type == "application/json":
        try:
            parsed = json.loads(request.body, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError):
            # RecursionError: a body nested deeper than Python's decoder goes is bad input too, not a 500.
            raise _invalid_request("The body is not valid JSON.") from None
        if not isinstance(parsed, dict):
            raise _invalid_request("The body must be a JSON object.")
        raw = parsed
    else:
        raise _invalid_request("Send the parameters as application/x-www-form-urlencoded or application/json.")
    params: dict[str, str] = {}
    for name in names:
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _invalid_request(f"The parameter {name} must be a string.")
        if value:
            params[name] = value
    return params


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    """client_secret_basic (RFC 6749 2.3.1): id and secret form-encoded, then base64, in the header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise _invalid_client()
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid_client(basic=True) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise _invalid_client(basic=True)
    return unquote_plus(client_id), unquote_plus(secret)


def _authenticate(request: HttpRequest, client_id: str | None, secret: str | None) -> DevClient:
    basic = _basic_credentials(request)
    if basic is not None:
        if (client_id is not None and client_id != basic[0]) or secret is not None:
            raise _invalid_request("Use one client authentication method, not two.")
        client_id, secret = basic
    if not client_id or not secret:
        raise _invalid_client(basic=basic is not None)
    client: DevClient | None = DevClient.objects.authenticate(client_id, secret)
    if client is None:
        raise _invalid_client(basic=basic is not None)
    return client


def _served(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        conf.require_serving()
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@require_GET
@_served
def jwks(request: HttpRequest) -> HttpResponse:
    """The public keys tokens are verified with."""
    response = JsonResponse(keys.get_issuer().jwks())
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_GET
@_served
def openid_configuration(request: HttpRequest) -> HttpResponse:
    """Discovery: where the keys and the token endpoint are."""
    return JsonResponse(discovery_document())


def discovery_document() -> dict[str, Any]:
    """The dev issuer's OpenID discovery document (``/.well-known/openid-configuration``)."""
    issuer = conf.served_issuer().issuer
    base = issuer if issuer.endswith("/") else f"{issuer}/"
    document: dict[str, Any] = {
        "issuer": issuer,
        "jwks_uri": f"{base}.well-known/jwks.json",
        "token_endpoint": f"{base}oauth/token",
        "grant_types_supported": [GRANT_TYPE],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    document.update(oidc_provider.discovery_fields(base))
    return document


@csrf_exempt
@require_POST
@_served
def oauth_token(request: HttpRequest) -> HttpResponse:
    """Auth0's ``/oauth/token`` for the client-credentials grant."""
    try:
        params = read_parameters(
            request, frozenset({"grant_type", "client_id", "client_secret", "audience", "scope", "organization"})
        )
        grant_type = params.get("grant_type")
        if grant_type is None:
            raise _invalid_request("Missing grant_type.")
        if grant_type == oidc_provider.GRANT_TYPE:
            # The admin's OpenID Connect sign-in (see oidc_provider).
            return oidc_provider.exchange_code(request)
        if grant_type != GRANT_TYPE:
            raise OAuthError("unsupported_grant_type", f"Only {GRANT_TYPE} is supported.")
        client = _authenticate(request, params.get("client_id"), params.get("client_secret"))
        audience = params.get("audience", conf.default_audience())
        if audience not in conf.served_issuer().audiences:
            raise _invalid_request("This issuer does not serve the requested audience.")
        granted = client.scope_list
        requested = params.get("scope")
        if requested is None:
            scopes = granted
        else:
            wanted = set(requested.split())
            if not wanted <= set(granted):
                raise OAuthError("invalid_scope", "The client may not request these scopes.")
            scopes = [scope for scope in granted if scope in wanted]
        organization = params.get("organization")
        if organization is not None and not ORGANIZATION_ID.fullmatch(organization):
            raise _invalid_request("organization must be an Auth0 organization id (org_...).")
        jkt = _dpop_key(request)
        token = issue_token(client, audience=audience, scopes=scopes, jkt=jkt, org_id=organization)
    except OAuthError as error:
        return error.response()
    return _token_response(
        {
            "access_token": token.access_token,
            "token_type": "DPoP" if jkt is not None else "Bearer",
            "expires_in": token.expires_in,
            "scope": token.scope,
        }
    )


@csrf_exempt
@require_POST
@_served
def cobee_token(request: HttpRequest) -> HttpResponse:
    """Cobee's ``/api/v3/oauth/token``: ``clientId`` and ``clientSecret`` in, camelCase out."""
    try:
        params = read_parameters(request, frozenset({"clientId", "clientSecret"}))
        client = _authenticate(request, params.get("clientId"), params.get("clientSecret"))
        token = issue_token(client, audience=conf.default_audience(), scopes=client.scope_list)
    except OAuthError as error:
        return error.response()
    return _token_response({"accessToken": token.access_token, "tokenType": "Bearer", "expiresIn": token.expires_in})


#: The ``organization`` parameter of a token request, as Auth0 spells organization ids.
ORGANIZATION_ID = re.compile(r"org_[A-Za-z0-9]{1,64}")


def _dpop_key(request: HttpRequest) -> str | None:
    """The thumbprint of the key of the request's DPoP proof (RFC 9449 section 5), ``None`` without one.

    The proof is checked as a resource server checks one, but for ``ath`` and the binding (there is no
    token yet): a bad proof is ``invalid_dpop_proof``, never a token bound to a key nobody proved.
    """
    proof = request.META.get("HTTP_DPOP")
    if proof is None:
        return None
    verifier = dpop.get_proof_verifier()
    try:
        if "," in proof:
            raise ProofRejected(Reason.DPOP_MULTIPLE_PROOFS)
        checked = verifier.verify(
            proof.strip(), method=request.method or "", htu=dpop.request_htu(request), access_token=None, jkt=None
        )
        verifier.check_replay(checked)
    except NonceRequired as exc:
        # RFC 9449 section 8: the client retries with the nonce of the DPoP-Nonce header.
        raise OAuthError(
            "use_dpop_nonce", "Send the DPoP-Nonce value in the proof.", headers={"DPoP-Nonce": exc.nonce}
        ) from None
    except (ProofRejected, ReplayStoreUnavailable):
        raise OAuthError("invalid_dpop_proof", "The DPoP proof is invalid.") from None
    return checked.jkt


def _token_response(body: dict[str, Any]) -> JsonResponse:
    response = JsonResponse(body)
    for name, value in NO_STORE.items():
        response[name] = value
    return response
