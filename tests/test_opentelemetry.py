"""OpenTelemetry: spans and metrics of authentication, tenant binding, key-set fetches, refusals and
throttling, read back through the SDK's in-memory span exporter and metric reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from cobee_django import instrumentation, signals

otel_sdk = pytest.importorskip("opentelemetry.sdk")

from opentelemetry import metrics, trace  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402

from cobee_django.contrib import opentelemetry as telemetry  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.urls("tests.testapp.apiviews")

_sdk: dict[str, object] = {}


def sdk() -> tuple[InMemorySpanExporter, InMemoryMetricReader]:
    """The process's SDK (global providers can be set only once), exporting to memory."""
    if not _sdk:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        _sdk.update(exporter=exporter, reader=reader)
    return _sdk["exporter"], _sdk["reader"]  # type: ignore[return-value]


class Metrics:
    """Cumulative points of our instruments, so a test reads what it added."""

    def __init__(self, reader: InMemoryMetricReader) -> None:
        self.reader = reader
        self.before = self.read()

    def read(self) -> dict[tuple[str, frozenset], float]:
        points: dict[tuple[str, frozenset], float] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        if value is None:
                            value = point.count  # a histogram: how many were recorded
                        points[metric.name, frozenset(point.attributes.items())] = value
        return points

    def added(self, name: str, **attributes: object) -> float:
        key = (name, frozenset(attributes.items()))
        return self.read().get(key, 0) - self.before.get(key, 0)


@pytest.fixture
def otel(settings, auth_settings):
    exporter, reader = sdk()
    settings.COBEE_DJANGO = {**auth_settings, "TELEMETRY": True}
    assert telemetry.enabled()
    exporter.clear()
    yield exporter, Metrics(reader)
    exporter.clear()


def spans(exporter, name):
    return [s for s in exporter.get_finished_spans() if s.name == name]


def all_values(exporter) -> str:
    """Every attribute and event value of every finished span, as one string."""
    out = []
    for span in exporter.get_finished_spans():
        out.append(json.dumps(dict(span.attributes), default=str))
        for event in span.events:
            out.append(json.dumps(dict(event.attributes), default=str))
    return "\n".join(out)


def get(path, token=None):
    client = APIClient()
    return client.get(path, **({"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}))


def test_an_accepted_token_has_a_span_and_counts(otel, token_issuer, tenants):
    exporter, meter = otel
    token = token_issuer.make_token(tenants.a, tenants.corp, scopes=["read:employees"], client_id="partner-1")
    assert get(f"/api/v3/companies/{tenants.a}/employees", token).status_code == 200
    (auth,) = spans(exporter, "cobee_django.authenticate")
    assert auth.attributes["cobee_django.auth.outcome"] == "accepted"
    assert auth.attributes["cobee_django.issuer"] == token_issuer.issuer
    assert auth.attributes["cobee_django.client_id"] == "partner-1"
    assert auth.attributes["cobee_django.company_id"] == str(tenants.a)
    assert auth.attributes["cobee_django.corporation_id"] == str(tenants.corp)
    assert auth.status.status_code is StatusCode.UNSET
    (fetch,) = spans(exporter, "cobee_django.jwks.fetch")
    assert fetch.parent.span_id == auth.context.span_id  # the first request paid for the download
    assert fetch.attributes["cobee_django.jwks.outcome"] == "success"
    (bind,) = spans(exporter, "cobee_django.bind_tenant")
    assert bind.attributes["cobee_django.tenant.company_count"] == 2
    assert bind.attributes["cobee_django.corporation_id"] == str(tenants.corp)
    assert token not in all_values(exporter) and token.split(".")[2] not in all_values(exporter)
    assert meter.added("cobee_django.tokens.accepted", issuer=token_issuer.issuer) == 1
    assert meter.added("cobee_django.jwks.fetches", issuer=token_issuer.issuer, outcome="success") == 1
    assert meter.added("cobee_django.jwks.fetch.duration", issuer=token_issuer.issuer, outcome="success") == 1


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda issuer: issuer.make_token(uuid.uuid4(), exp=int(time.time()) - 3600), "expired"),
        (lambda issuer: issuer.make_token(uuid.uuid4())[:-8] + "AAAAAAAA", "bad_signature"),
        (lambda issuer: issuer.make_token(uuid.uuid4(), aud="https://elsewhere.example"), "bad_audience"),
        (lambda issuer: "not-a-jwt", "malformed_token"),
    ],
)
def test_rejected_tokens_count_per_reason_and_never_show_the_token(otel, token_issuer, make, reason):
    exporter, meter = otel
    token = make(token_issuer)
    with trace.get_tracer("test").start_as_current_span("request"):
        assert get(f"/api/v3/companies/{uuid.uuid4()}/employees", token).status_code == 401
    (auth,) = spans(exporter, "cobee_django.authenticate")
    assert auth.attributes["cobee_django.auth.outcome"] == "rejected"
    assert auth.attributes["cobee_django.auth.reason"] == reason
    assert auth.status.status_code is StatusCode.UNSET  # a refused token is not a server error
    assert not auth.events  # no exception (and no traceback) recorded
    assert token not in all_values(exporter)
    assert meter.added("cobee_django.tokens.rejected", reason=reason) == 1


def test_a_key_set_that_cannot_be_fetched_is_a_failed_fetch_and_an_error_span(otel, token_issuer, jwks_server):
    exporter, meter = otel
    jwks_server.set_fault("error")
    assert get(f"/api/v3/companies/{uuid.uuid4()}/employees", token_issuer.make_token(uuid.uuid4())).status_code == 503
    (fetch,) = spans(exporter, "cobee_django.jwks.fetch")
    assert fetch.attributes["cobee_django.jwks.outcome"] == "failure"
    (auth,) = spans(exporter, "cobee_django.authenticate")
    assert auth.attributes["cobee_django.auth.reason"] == "key_set_unavailable"
    assert auth.status.status_code is StatusCode.ERROR
    assert meter.added("cobee_django.jwks.fetches", issuer=token_issuer.issuer, outcome="failure") == 1
    assert meter.added("cobee_django.tokens.rejected", reason="key_set_unavailable") == 1


def test_a_refusal_counts_and_marks_the_request_span(otel, token_issuer, tenants):
    exporter, meter = otel
    token = token_issuer.make_token(tenants.c, scopes=["read:employees"])
    with trace.get_tracer("test").start_as_current_span("request"):
        assert get(f"/api/v3/companies/{tenants.a}/employees", token).status_code == 403
    (request,) = spans(exporter, "request")
    assert request.attributes["cobee_django.denial.reason"] == "company_not_reachable"
    assert [e.name for e in request.events] == ["cobee_django.access_denied"]
    assert request.attributes["cobee_django.tenant.company_count"] == 1
    assert meter.added("cobee_django.access.denied", reason="company_not_reachable", status=403) == 1


def test_throttled_requests_count(otel, settings, token_issuer, tenants):
    _, meter = otel
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_CLASSES": ["cobee_django.throttling.CompanyRateThrottle"],
        "DEFAULT_THROTTLE_RATES": {"cobee_company": "1/day"},
    }
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "otel"}}
    token = token_issuer.make_token(tenants.c, scopes=["read:employees"])
    statuses = [get(f"/api/v3/companies/{tenants.c}/employees", token).status_code for _ in range(3)]
    assert statuses.count(429) >= 2  # one window admits one (two if the window turned in between)
    added = meter.added("cobee_django.throttle.throttled", scope="cobee_company", per="company")
    assert added == statuses.count(429)


def test_an_unreachable_database_counts_and_marks_the_request_span(otel, token_issuer, tenants):
    from tests.test_database_faults import dead_wrapper, default_connection

    exporter, meter = otel
    token = token_issuer.make_token(tenants.c, scopes=["read:employees"])
    with trace.get_tracer("test").start_as_current_span("request"), default_connection(dead_wrapper()):
        assert get(f"/api/v3/companies/{tenants.c}/employees", token).status_code == 503
    (request,) = spans(exporter, "request")
    assert request.attributes["cobee_django.database.fault"] == "database_unreachable"
    assert "cobee_django.database_unavailable" in [e.name for e in request.events]
    assert request.status.status_code is trace.StatusCode.ERROR
    assert meter.added("cobee_django.database.unavailable", reason="database_unreachable") == 1


def test_off_means_no_receivers_and_no_spans(settings, auth_settings, token_issuer, tenants):
    exporter, _ = sdk()
    settings.COBEE_DJANGO = {**auth_settings, "TELEMETRY": False}
    exporter.clear()
    assert not telemetry.enabled()
    assert instrumentation.installed() is None
    for signal in (
        signals.token_accepted,
        signals.token_rejected,
        signals.tenant_bound,
        signals.access_denied,
        signals.database_unavailable,
    ):
        assert not any("telemetry" in str(receiver[0]) for receiver in signal.receivers)
    token = token_issuer.make_token(tenants.c, scopes=["read:employees"])
    assert get(f"/api/v3/companies/{tenants.c}/employees", token).status_code == 200
    assert exporter.get_finished_spans() == ()


def test_without_the_extra_telemetry_is_refused_by_a_check_and_everything_else_works():
    """A process where ``import opentelemetry`` fails: the hooks are no-ops, TELEMETRY is an error."""
    script = """
import sys
sys.modules["opentelemetry"] = None  # as if the extra were not installed
import django
from django.conf import settings
django.setup()
from cobee_django import conf, instrumentation
assert instrumentation.installed() is None
assert "cobee_django.contrib.opentelemetry" not in sys.modules
assert settings.COBEE_DJANGO["TELEMETRY"] is False, settings.COBEE_DJANGO
problems = conf.validate({**settings.COBEE_DJANGO, "TELEMETRY": True})
assert [p.id for p in problems] == ["cobee_django.E050"], problems
@instrumentation.traced("x")
def f(a):
    return a + 1
assert f(1) == 2
instrumentation.key_set_fetched("i", "success", 0.1)
instrumentation.throttled("s", "company")
print("OK")
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    env.pop("COBEE_TELEMETRY", None)
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.stdout.strip().endswith("OK"), completed.stderr[-2000:]


@pytest.mark.bench  # the benchmark in a subprocess
@pytest.mark.parametrize("sdk", [[], ["--sdk"]], ids=["api-only", "sdk"])
def test_the_overhead_benchmark_runs(sdk):
    """``python -m bench.bench_telemetry`` prints its ratio (tiny sizes; the figure is not checked)."""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    completed = subprocess.run(
        [sys.executable, "-m", "bench.bench_telemetry", "--requests", "2", "--rounds", "2", "--no-environment", *sdk],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.startswith("RATIO request, telemetry on"), completed.stdout
