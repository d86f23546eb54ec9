"""A view that runs hand-written SQL inside a request authenticated by a verified access token."""

from __future__ import annotations

import uuid

from django.db import DatabaseError, connection
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from cobee_django.authentication import JWTAuthentication


class RawTeams(APIView):
    """``SELECT *`` and ``INSERT`` written by hand: only row-level security stands in their way."""

    authentication_classes = [JWTAuthentication]
    permission_classes = []

    def get(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM rlsapp_team ORDER BY name")
            position = [c.name for c in cursor.description].index("name")
            names = [row[position] for row in cursor.fetchall()]
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
        return Response({"names": names, "pid": pid})

    def post(self, request):
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO rlsapp_team (id, name, company_id) VALUES (%s, %s, %s)",
                    [uuid.uuid4(), request.data["name"], request.data["company"]],
                )
        except DatabaseError as exc:
            return Response({"error": str(exc).splitlines()[0]}, status=409)
        return Response({"created": True}, status=201)


urlpatterns = [path("raw-teams", RawTeams.as_view())]
