"""OpenTelemetry spans and metrics of every security decision (the optional extra ``otel``).

Turned on by ``COBEE_DJANGO["TELEMETRY"] = True`` with ``opentelemetry-api`` installed: the app
config then loads this module at start-up, and it installs its hooks in
:mod:`cobee_django.instrumentation` and connects its signal receivers. Spans and instruments come
from the global tracer and meter providers, which the project configures (an OTLP or Prometheus
exporter, see the manual's observability page); without a configured SDK the API is a no-op and
spans are skipped. When telemetry is off, neither this module nor the OpenTelemetry API is
imported, no signal receiver is connected, and each core hook costs one global read.

Spans (kind internal):

- ``cobee_django.authenticate``: around ``JWTAuthentication.authenticate``, with
  ``cobee_django.auth.outcome`` (``accepted``/``rejected``), ``cobee_django.auth.reason`` (the reason
  code of a rejection), ``cobee_django.issuer``, ``cobee_django.client_id``,
  ``cobee_django.company_id`` and ``cobee_django.corporation_id``. Never the token.
- ``cobee_django.bind_tenant``: the first resolution of a request's tenant, with
  ``cobee_django.tenant.company_count`` and ``cobee_django.corporation_id``.
- ``cobee_django.jwks.fetch``: one key-set download, with ``cobee_django.issuer`` and
  ``cobee_django.jwks.outcome`` (``success``/``failure``).

Refusals (``access_denied``), throttled requests and database faults (``database_unavailable``, which
also marks the span as an error) add an event and attributes to the current span (the request's
server span when the project instruments Django).

Metrics:

==========================================  =========  ======================================
instrument                                  kind       attributes
==========================================  =========  ======================================
``cobee_django.tokens.accepted``            counter    ``issuer``
``cobee_django.tokens.rejected``            counter    ``reason``
``cobee_django.jwks.fetches``               counter    ``issuer``, ``outcome``
``cobee_django.jwks.fetch.duration``        histogram  ``issuer``, ``outcome`` (seconds)
``cobee_django.access.denied``              counter    ``reason``, ``status``
``cobee_django.throttle.throttled``         counter    ``scope``, ``per``
``cobee_django.throttle.backend_errors``    counter    ``scope``, ``per``
``cobee_django.database.unavailable``       counter    ``reason`` (requests answered 503)
==========================================  =========  ======================================

Client and company ids are span attributes only: as metric attributes they would make one time
series per client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import metrics as otel_metrics
from opentelemetry import trace as otel_trace

from .. import __version__, instrumentation, signals
from ..conf import user_settings

__all__: list[str] = []

#: Tracer providers of the API alone (no SDK configured yet): their spans record nothing.
_NO_OP_PROVIDERS: tuple[type, ...] = (otel_trace.ProxyTracerProvider, otel_trace.NoOpTracerProvider)
PREFIX = "cobee_django"
_DISPATCH_UID = "cobee_django.contrib.opentelemetry"


def _tenant_attributes(span: Any, tenant: Any) -> None:
    if tenant is None:
        span.set_attribute(f"{PREFIX}.tenant.company_count", 0)
        return
    span.set_attribute(f"{PREFIX}.tenant.company_count", len(tenant.company_ids))
    if tenant.corporation_id is not None:
        span.set_attribute(f"{PREFIX}.corporation_id", str(tenant.corporation_id))


#: Attributes a span takes from its function's result, by span name.
_RESULT_ATTRIBUTES: dict[str, Callable[[Any, Any], None]] = {f"{PREFIX}.bind_tenant": _tenant_attributes}


class _Instruments:
    """The tracer and the instruments: the hooks :mod:`cobee_django.instrumentation` calls."""

    def __init__(self) -> None:
        meter = otel_metrics.get_meter(PREFIX, __version__)
        self.tracer = otel_trace.get_tracer(PREFIX, __version__)
        #: Set once the global tracer provider records (the API never replaces a real one afterwards).
        self.recording = False
        self.tokens_accepted = meter.create_counter(
            f"{PREFIX}.tokens.accepted", unit="{token}", description="Access tokens verified."
        )
        self.tokens_rejected = meter.create_counter(
            f"{PREFIX}.tokens.rejected", unit="{token}", description="Credentials refused, by reason code."
        )
        self.key_set_fetches = meter.create_counter(
            f"{PREFIX}.jwks.fetches", unit="{fetch}", description="Key-set downloads, by outcome."
        )
        self.key_set_fetch_duration = meter.create_histogram(
            f"{PREFIX}.jwks.fetch.duration", unit="s", description="How long key-set downloads took."
        )
        self.access_denied = meter.create_counter(
            f"{PREFIX}.access.denied", unit="{request}", description="Authenticated requests refused, by reason."
        )
        self.throttled_requests = meter.create_counter(
            f"{PREFIX}.throttle.throttled", unit="{request}", description="Requests answered 429."
        )
        self.throttle_backend_errors = meter.create_counter(
            f"{PREFIX}.throttle.backend_errors", unit="{request}", description="Throttle cache failures."
        )
        self.database_unavailable = meter.create_counter(
            f"{PREFIX}.database.unavailable",
            unit="{request}",
            description="Requests answered 503 because the database could not be reached, by reason.",
        )

    def span(self, name: str, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run ``function`` in a span ``name``.

        An exception of a 4xx kind (a refused token) leaves the span's status unset; any other
        marks it as an error, by type only.
        """
        if not self.recording:
            if isinstance(otel_trace.get_tracer_provider(), _NO_OP_PROVIDERS):
                return function(*args, **kwargs)  # nothing would record the span: skip its cost
            self.recording = True
        with self.tracer.start_as_current_span(name, record_exception=False, set_status_on_exception=False) as span:
            try:
                result = function(*args, **kwargs)
            except Exception as exc:
                if getattr(exc, "status_code", 500) >= 500:
                    span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR, type(exc).__name__))
                raise
            on_result = _RESULT_ATTRIBUTES.get(name)
            if on_result is not None:
                on_result(span, result)
            return result

    def key_set_fetched(self, issuer: str, outcome: str, seconds: float) -> None:
        attributes = {"issuer": issuer, "outcome": outcome}
        self.key_set_fetches.add(1, attributes)
        self.key_set_fetch_duration.record(seconds, attributes)
        span = otel_trace.get_current_span()
        if span.is_recording():
            span.set_attributes({f"{PREFIX}.issuer": issuer, f"{PREFIX}.jwks.outcome": outcome})

    def throttled(self, scope: str, per: str) -> None:
        self.throttled_requests.add(1, {"scope": scope, "per": per})
        span = otel_trace.get_current_span()
        if span.is_recording():
            span.add_event(f"{PREFIX}.throttled", {"scope": scope, "per": per})

    def throttle_backend_failed(self, scope: str, per: str) -> None:
        self.throttle_backend_errors.add(1, {"scope": scope, "per": per})


#: The instruments while telemetry is on, else ``None``.
_on: _Instruments | None = None
#: Built once per process: the API hands out the same instruments for the same names anyway.
_built: _Instruments | None = None


def enabled() -> bool:
    """True when telemetry is on."""
    return _on is not None


def configure() -> None:
    """Turn telemetry on or off as ``COBEE_DJANGO["TELEMETRY"]`` says (the app config calls this).

    Reads the raw setting, so an invalid ``COBEE_DJANGO`` is left to the system checks.
    """
    global _on, _built
    if user_settings().get("TELEMETRY") is not True:
        _on = None
        instrumentation.install(None)
        for signal in (
            signals.token_accepted,
            signals.token_rejected,
            signals.tenant_bound,
            signals.access_denied,
            signals.database_unavailable,
        ):
            signal.disconnect(dispatch_uid=_DISPATCH_UID)
        return
    if _built is None:
        _built = _Instruments()
    _on = _built
    instrumentation.install(_on)
    signals.token_accepted.connect(_on_token_accepted, dispatch_uid=_DISPATCH_UID)
    signals.token_rejected.connect(_on_token_rejected, dispatch_uid=_DISPATCH_UID)
    signals.tenant_bound.connect(_on_tenant_bound, dispatch_uid=_DISPATCH_UID)
    signals.access_denied.connect(_on_access_denied, dispatch_uid=_DISPATCH_UID)
    signals.database_unavailable.connect(_on_database_unavailable, dispatch_uid=_DISPATCH_UID)


# --- signal receivers -------------------------------------------------------------------------------


def _on_token_accepted(sender: Any, token: Any, principal: Any, **kwargs: Any) -> None:
    on = _on
    if on is None:
        return
    issuer = token.issuer.issuer
    on.tokens_accepted.add(1, {"issuer": issuer})
    span = otel_trace.get_current_span()
    if span.is_recording():
        span.set_attributes(
            {
                f"{PREFIX}.auth.outcome": "accepted",
                f"{PREFIX}.issuer": issuer,
                f"{PREFIX}.client_id": principal.client_id,
                f"{PREFIX}.company_id": str(principal.company_id),
            }
        )
        if principal.corporation_id is not None:
            span.set_attribute(f"{PREFIX}.corporation_id", str(principal.corporation_id))


def _on_token_rejected(sender: Any, reason: str, client_id: str | None, **kwargs: Any) -> None:
    on = _on
    if on is None:
        return
    on.tokens_rejected.add(1, {"reason": reason})
    span = otel_trace.get_current_span()
    if span.is_recording():
        span.set_attributes({f"{PREFIX}.auth.outcome": "rejected", f"{PREFIX}.auth.reason": reason})
        if client_id is not None:  # set only once the token's signature was verified
            span.set_attribute(f"{PREFIX}.client_id", client_id)


def _on_tenant_bound(sender: Any, tenant: Any, **kwargs: Any) -> None:
    if _on is None:
        return
    span = otel_trace.get_current_span()
    if span.is_recording():
        attributes: dict[str, str | int] = {f"{PREFIX}.tenant.company_count": len(tenant.company_ids)}
        if tenant.corporation_id is not None:
            attributes[f"{PREFIX}.corporation_id"] = str(tenant.corporation_id)
        span.set_attributes(attributes)


def _on_access_denied(sender: Any, reason: str, status: int, **kwargs: Any) -> None:
    on = _on
    if on is None:
        return
    on.access_denied.add(1, {"reason": reason, "status": status})
    span = otel_trace.get_current_span()
    if span.is_recording():
        span.add_event(f"{PREFIX}.access_denied", {"reason": reason, "status": status})
        span.set_attribute(f"{PREFIX}.denial.reason", reason)


def _on_database_unavailable(sender: Any, reason: str, **kwargs: Any) -> None:
    on = _on
    if on is None:
        return
    on.database_unavailable.add(1, {"reason": reason})
    span = otel_trace.get_current_span()
    if span.is_recording():
        span.add_event(f"{PREFIX}.database_unavailable", {"reason": reason})
        span.set_attribute(f"{PREFIX}.database.fault", reason)
        span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR, reason))
