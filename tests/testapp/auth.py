"""A test-only authentication class: the principal comes from a JSON header, no token needed."""

from __future__ import annotations

import json

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from cobee_django.testing import make_principal

HEADER = "HTTP_X_TEST_PRINCIPAL"


def principal(company, corporation=None, scopes=(), iat=1_700_000_000, client_id="client-1"):
    claims = {"iat": iat, "azp": client_id}
    return make_principal(company, corporation or None, scopes, client_id=client_id, claims=claims)


def header(company, corporation=None, scopes=(), iat=1_700_000_000):
    data = {"company": str(company), "corporation": str(corporation) if corporation else None}
    return {"HTTP_X_TEST_PRINCIPAL": json.dumps({**data, "scopes": list(scopes), "iat": iat})}


class HeaderAuthentication(BaseAuthentication):
    def authenticate(self, request):
        raw = request.META.get(HEADER)
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            raise AuthenticationFailed() from None
        return principal(data["company"], data.get("corporation"), data.get("scopes", ()), data.get("iat")), None

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
