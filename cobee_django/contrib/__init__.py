"""Optional integrations, each loaded only when the project uses it; the core never imports them.

- :mod:`cobee_django.contrib.celery`: the tenant carried into Celery tasks (the ``celery`` extra);
- :mod:`cobee_django.contrib.opentelemetry`: spans and metrics (the ``otel`` extra, ``TELEMETRY``);
- :mod:`cobee_django.contrib.drf_spectacular`: the OpenAPI schema extension (the ``openapi`` extra).
"""

__all__: list[str] = []
