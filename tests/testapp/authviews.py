"""A tiny API for the authentication tests: DRF views behind JWTAuthentication only."""

from __future__ import annotations

from django.urls import path
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from cobee_django.authentication import JWTAuthentication
from cobee_django.exceptions import InsufficientScope


class WhoAmI(APIView):
    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request):
        principal = request.user
        return Response(
            {
                "client_id": principal.client_id,
                "company_id": str(principal.company_id),
                "corporation_id": str(principal.corporation_id) if principal.corporation_id else None,
                "scopes": sorted(principal.scopes),
                "issuer": principal.issuer,
                "auth": type(request.auth).__name__,
            }
        )

    def post(self, request):
        return self.get(request)


class NeedsWrite(BasePermission):
    def has_permission(self, request, view):
        if "write:employees" not in request.user.scopes:
            raise InsufficientScope(["write:employees"])
        return True


class WriteOnly(WhoAmI):
    permission_classes = [IsAuthenticated, NeedsWrite]


urlpatterns = [
    path("whoami", WhoAmI.as_view()),
    path("write", WriteOnly.as_view()),
]
