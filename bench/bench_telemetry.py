"""What telemetry adds to a request: TELEMETRY on against off, in the same process.

    python -m bench.bench_telemetry [--requests 200] [--rounds 30] [--sdk]

Each request goes through Django's handler, ``TenantMiddleware`` and a DRF view behind
``JWTAuthentication`` with a token verified once (then from the validated-token cache) that binds
its tenant: the authentication span, the tenant-binding span and the accepted-token counter are on
the path; the key set is installed (no fetch). The database is SQLite in memory and the view reads
nothing, so the figure is the hooks' cost against the smallest request, not a realistic one.

Without ``--sdk`` the OpenTelemetry API runs with no SDK (its no-op providers: what a project pays
for the extra before it configures exporters). With ``--sdk`` the SDK records every span into an
in-memory exporter (a simple processor) and every measurement into a metric reader: an upper bound
of what a configured pipeline costs in the request thread (a batch processor exports elsewhere).

Timed with the thread's CPU clock, so that other processes on a busy machine count against neither
side. Off is also what a project without the extra runs: the integration is not loaded, no receiver is
connected, and each hook is one global read.
"""

from __future__ import annotations

import argparse
import time
import uuid

from bench.common import interleave, print_environment, ratio, report

ISSUER = "https://bench.example/"
AUDIENCE = "https://api.bench.example"


def _configure() -> None:
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-telemetry",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[
            "cobee_django",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "rest_framework",
        ],
        MIDDLEWARE=["cobee_django.middleware.TenantMiddleware"],
        ROOT_URLCONF=__name__,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        REST_FRAMEWORK={"UNAUTHENTICATED_USER": None},
        COBEE_DJANGO={"ISSUER": ISSUER, "AUDIENCE": AUDIENCE, "PROVISION_MEMBERSHIP": False},
        USE_TZ=True,
    )
    import django

    django.setup()


def _view() -> object:
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from cobee_django import state
    from cobee_django.authentication import JWTAuthentication

    class Me(APIView):
        authentication_classes = [JWTAuthentication]
        permission_classes: list[type] = []

        def get(self, request: object) -> Response:
            tenant = state.tenant_or_none()
            return Response({"companies": len(tenant.company_ids) if tenant else 0})

    return Me.as_view()


urlpatterns: list[object] = []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="requests per side per round")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--sdk", action="store_true", help="record with the OpenTelemetry SDK (in memory)")
    parser.add_argument("--no-environment", action="store_true")
    args = parser.parse_args(argv)

    _configure()
    from django.conf import settings
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import path

    from cobee_django import instrumentation
    from cobee_django.testing import TokenIssuer, install_key_set

    urlpatterns.append(path("me", _view()))
    if not args.no_environment:
        print_environment()
    if args.sdk:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))

    issuer = TokenIssuer(issuer=ISSUER, audience=AUDIENCE)
    install_key_set(ISSUER, issuer.jwks())
    token = issuer.make_token(uuid.uuid4(), scopes=["read:employees"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    off = {**settings.COBEE_DJANGO, "TELEMETRY": False}
    on = {**settings.COBEE_DJANGO, "TELEMETRY": True}

    def measure(config: dict[str, object]) -> float:
        with override_settings(COBEE_DJANGO=config):
            assert (instrumentation.installed() is not None) is config["TELEMETRY"]
            assert client.get("/me").status_code == 200  # the token is verified before the clock starts
            started = time.thread_time()
            for _ in range(args.requests):
                client.get("/me")
            elapsed = (time.thread_time() - started) / args.requests * 1e6
        if args.sdk:
            exporter.clear()
        return elapsed

    results = interleave({"on": lambda: measure(on), "off": lambda: measure(off)}, args.rounds)
    label = "with the SDK recording" if args.sdk else "API only, no SDK"
    report(f"request, telemetry on ({label}) / off", ratio(results["on"], results["off"]), unit="us")


if __name__ == "__main__":
    main()
