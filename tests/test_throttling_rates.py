"""Malformed throttle rates: a system check error (E051) at startup, and a 503 (never a 500) at run time."""

from __future__ import annotations

import logging

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import path
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from cobee_django.checks import E_THROTTLE_RATE, check_throttle_rates, throttle_rate_errors
from cobee_django.exceptions import ThrottleUnavailable
from cobee_django.throttling import ClientRateThrottle, _parse_throttle_rate

MALFORMED = [
    "abc",
    "5",
    "5/",
    "/minute",
    "5/x",
    "5/month",
    "5/Minute",
    " 5/minute",
    "5 /minute",
    "-1/s",
    "1.5/s",
    5,
    [],
    b"5/s",
]
WELL_FORMED = {
    "5/s": (5, 1),
    "10/sec": (10, 1),
    "100/minute": (100, 60),
    "100/min": (100, 60),
    "7/hours": (7, 3600),
    "1000/day": (1000, 86400),
    "0/d": (0, 86400),
}


class Ping(APIView):
    authentication_classes = []
    permission_classes = []
    throttle_classes = [ClientRateThrottle]

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [path("ping", Ping.as_view())]


@pytest.mark.parametrize("rate", MALFORMED)
def test_a_malformed_rate_is_refused_by_the_parser_and_the_check(rate) -> None:
    with pytest.raises(ValueError, match="is not a rate"):
        _parse_throttle_rate(rate)
    [error] = throttle_rate_errors({"cobee_company": rate, "cobee_client": "5/minute"})
    assert error.id == E_THROTTLE_RATE == "cobee_django.E051"
    assert "cobee_company" in error.msg and "100/minute" in error.hint


@pytest.mark.parametrize(("rate", "parsed"), WELL_FORMED.items())
def test_well_formed_rates_pass(rate, parsed) -> None:
    assert _parse_throttle_rate(rate) == parsed
    assert throttle_rate_errors({"scope": rate, "off": None}) == []


def test_every_malformed_rate_is_reported_and_a_non_dict_too() -> None:
    assert len(throttle_rate_errors({"a": "abc", "b": "5/x", "c": "5/s"})) == 2
    assert [e.id for e in throttle_rate_errors(["5/s"])] == [E_THROTTLE_RATE]


def test_manage_py_check_fails_on_a_malformed_rate(settings) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"cobee_client": "abc"}}
    assert [e.id for e in check_throttle_rates()] == [E_THROTTLE_RATE]
    with pytest.raises(SystemCheckError, match=r"cobee_django\.E051"):
        call_command("check", tags=["security"])


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(("fail_open", "status"), [(False, 503), (True, 200)])
def test_at_run_time_a_malformed_rate_is_answered_as_configured_never_a_500(
    settings, caplog, fail_open, status
) -> None:
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "THROTTLE_FAIL_OPEN": fail_open}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"cobee_client": "abc"}}
    with caplog.at_level(logging.ERROR, logger="cobee_django.throttling"):
        response = APIClient().get("/ping")
    assert response.status_code == status
    if status == 503:
        assert response.json() == {"detail": ThrottleUnavailable.default_detail}
        assert "Retry-After" in response
    assert "cobee_django.E051" in caplog.text and "'cobee_client'" in caplog.text
