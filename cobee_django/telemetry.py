"""OpenTelemetry spans and metrics of every security decision (the optional extra ``otel``).

Turned on by ``COBEE_DJANGO["TELEMETRY"] = True`` with ``opentelemetry-api`` installed. Spans and
instruments come from the global tracer and meter providers, which the project configures (an OTLP
or Prometheus exporter, see the manual's observability page); without a configured SDK the API is a
no-op. When telemetry is off, or the API is not installed, nothing is imported, no signal receiver
is connected, and each hook below costs one global lookup.

Spans (kind internal):

- ``cobee_django.authenticate``: around ``JWTAuthentication.authenticate``, with
  ``cobee_django.auth.outcome`` (``accepted``/``rejected``), ``cobee_django.auth.reason`` (the reason
  code of a rejection), ``cobee_django.issuer``, ``cobee_django.client_id``,
  ``cobee_django.company_id`` and ``cobee_django.corporation_id``. Never the token.
- ``cobee_django.bind_tenant``: the first resolution of a request's tenant, with
  ``cobee_django.tenant.company_count`` and ``cobee_django.corporation_id``.
- ``cobee_django.jwks.fetch``: one key-set download, with ``cobee_django.issuer`` and
  ``cobee_django.jwks.outcome`` (``success``/``failure``).

Refusals (``access_denied``) and throttled requests add an event and attributes to the current span
(the request's server span when the project instruments Django).

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
==========================================  =========  ======================================

Client and company ids are span attributes only: as metric attributes they would make one time
series per client.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.signals import setting_changed
from django.dispatch import receiver

from . import __version__, signals
from .conf import is_reloading, user_settings

__all__ = ["PREFIX", "available", "configure", "enabled"]

try:  # the optional extra: without it every hook is a no-op
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace as otel_trace
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    otel_metrics = None  # type: ignore[assignment]
    otel_trace = None  # type: ignore[assignment]

F = TypeVar("F", bound=Callable[..., Any])
#: Tracer providers of the API alone (no SDK configured yet): their spans record nothing.
_NO_OP_PROVIDERS: tuple[type, ...] = (
    (otel_trace.ProxyTracerProvider, otel_trace.NoOpTracerProvider) if otel_trace is not None else ()
)
PREFIX = "cobee_django"
_DISPATCH_UID = "cobee_django.telemetry"


@dataclass(frozen=True)
class _Instruments:
    tracer: Any
    tokens_accepted: Any
    tokens_rejected: Any
    key_set_fetches: Any
    key_set_fetch_duration: Any
    access_denied: Any
    throttled: Any
    throttle_backend_errors: Any


#: The instruments while telemetry is on, else ``None`` (every hook checks this first).
_on: _Instruments | None = None


def available() -> bool:
    """True when the OpenTelemetry API is installed."""
    return otel_trace is not None


def enabled() -> bool:
    """True when telemetry is on (the setting is on and the API installed)."""
    return _on is not None


def configure() -> None:
    """Turn telemetry on or off as ``COBEE_DJANGO["TELEMETRY"]`` says (at startup and on every change).

    Reads the raw setting, so an invalid ``COBEE_DJANGO`` is left to the system checks.
    """
    global _on
    wanted = user_settings().get("TELEMETRY") is True and available()
    if not wanted:
        _on = None
        for signal in (signals.token_accepted, signals.token_rejected, signals.tenant_bound, signals.access_denied):
            signal.disconnect(dispatch_uid=_DISPATCH_UID)
        return
    if _on is None:
        _on = _build()
    signals.token_accepted.connect(_on_token_accepted, dispatch_uid=_DISPATCH_UID)
    signals.token_rejected.connect(_on_token_rejected, dispatch_uid=_DISPATCH_UID)
    signals.tenant_bound.connect(_on_tenant_bound, dispatch_uid=_DISPATCH_UID)
    signals.access_denied.connect(_on_access_denied, dispatch_uid=_DISPATCH_UID)


def _build() -> _Instruments:
    assert otel_trace is not None and otel_metrics is not None
    meter = otel_metrics.get_meter(PREFIX, __version__)
    return _Instruments(
        tracer=otel_trace.get_tracer(PREFIX, __version__),
        tokens_accepted=meter.create_counter(
            f"{PREFIX}.tokens.accepted", unit="{token}", description="Access tokens verified."
        ),
        tokens_rejected=meter.create_counter(
            f"{PREFIX}.tokens.rejected", unit="{token}", description="Credentials refused, by reason code."
        ),
        key_set_fetches=meter.create_counter(
            f"{PREFIX}.jwks.fetches", unit="{fetch}", description="Key-set downloads, by outcome."
        ),
        key_set_fetch_duration=meter.create_histogram(
            f"{PREFIX}.jwks.fetch.duration", unit="s", description="How long key-set downloads took."
        ),
        access_denied=meter.create_counter(
            f"{PREFIX}.access.denied", unit="{request}", description="Authenticated requests refused, by reason."
        ),
        throttled=meter.create_counter(
            f"{PREFIX}.throttle.throttled", unit="{request}", description="Requests answered 429."
        ),
        throttle_backend_errors=meter.create_counter(
            f"{PREFIX}.throttle.backend_errors", unit="{request}", description="Throttle cache failures."
        ),
    )


# --- spans ------------------------------------------------------------------------------------------


def traced(name: str, on_result: Callable[[Any, Any], None] | None = None) -> Callable[[F], F]:
    """Run the decorated function in a span ``name`` while telemetry is on.

    ``on_result(span, result)`` adds attributes from the return value. An exception of a 4xx kind (a
    refused token) leaves the span's status unset; any other marks it as an error, by type only.
    """

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            on = _on
            if on is None or isinstance(otel_trace.get_tracer_provider(), _NO_OP_PROVIDERS):
                return function(*args, **kwargs)  # nothing would record the span: skip its cost
            with on.tracer.start_as_current_span(name, record_exception=False, set_status_on_exception=False) as span:
                try:
                    result = function(*args, **kwargs)
                except Exception as exc:
                    if getattr(exc, "status_code", 500) >= 500:
                        assert otel_trace is not None
                        span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR, type(exc).__name__))
                    raise
                if on_result is not None:
                    on_result(span, result)
                return result

        return wrapper  # type: ignore[return-value]

    return decorate


def _tenant_attributes(span: Any, tenant: Any) -> None:
    if tenant is None:
        span.set_attribute(f"{PREFIX}.tenant.company_count", 0)
        return
    span.set_attribute(f"{PREFIX}.tenant.company_count", len(tenant.company_ids))
    if tenant.corporation_id is not None:
        span.set_attribute(f"{PREFIX}.corporation_id", str(tenant.corporation_id))


#: Decorates the resolution of a request's tenant (``TenantMiddleware.get_tenant``).
traced_tenant = traced(f"{PREFIX}.bind_tenant", on_result=_tenant_attributes)


def _current_span() -> Any:
    assert otel_trace is not None
    return otel_trace.get_current_span()


# --- signal receivers -------------------------------------------------------------------------------


def _on_token_accepted(sender: Any, token: Any, principal: Any, **kwargs: Any) -> None:
    on = _on
    if on is None:
        return
    issuer = token.issuer.issuer
    on.tokens_accepted.add(1, {"issuer": issuer})
    span = _current_span()
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
    span = _current_span()
    if span.is_recording():
        span.set_attributes({f"{PREFIX}.auth.outcome": "rejected", f"{PREFIX}.auth.reason": reason})
        if client_id is not None:  # set only once the token's signature was verified
            span.set_attribute(f"{PREFIX}.client_id", client_id)


def _on_tenant_bound(sender: Any, tenant: Any, **kwargs: Any) -> None:
    if _on is None:
        return
    span = _current_span()
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
    span = _current_span()
    if span.is_recording():
        span.add_event(f"{PREFIX}.access_denied", {"reason": reason, "status": status})
        span.set_attribute(f"{PREFIX}.denial.reason", reason)


# --- hooks called by other modules ------------------------------------------------------------------


def key_set_fetched(issuer: str, outcome: str, seconds: float) -> None:
    """Record one key-set download (``outcome``: ``success`` or ``failure``) and its duration."""
    on = _on
    if on is None:
        return
    attributes = {"issuer": issuer, "outcome": outcome}
    on.key_set_fetches.add(1, attributes)
    on.key_set_fetch_duration.record(seconds, attributes)
    span = _current_span()
    if span.is_recording():
        span.set_attributes({f"{PREFIX}.issuer": issuer, f"{PREFIX}.jwks.outcome": outcome})


def throttled(scope: str, per: str) -> None:
    """Record a request refused by a throttle."""
    on = _on
    if on is None:
        return
    on.throttled.add(1, {"scope": scope, "per": per})
    span = _current_span()
    if span.is_recording():
        span.add_event(f"{PREFIX}.throttled", {"scope": scope, "per": per})


def throttle_backend_failed(scope: str, per: str) -> None:
    """Record a throttle whose cache could not be reached."""
    on = _on
    if on is None:
        return
    on.throttle_backend_errors.add(1, {"scope": scope, "per": per})


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if is_reloading(setting):
        configure()
