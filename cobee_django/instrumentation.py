"""The core's span and metric hooks: no-ops until an integration installs its own.

The token path, the tenant binding, the key-set fetch and the throttles call these hooks. While
nothing is installed each one costs a global read and a test. At start-up, when
``COBEE_DJANGO["TELEMETRY"]`` is on, the app config loads :mod:`cobee_django.contrib.opentelemetry`,
which calls :func:`install` with its implementation (and ``install(None)`` when the setting goes
off). The core never imports that module, nor the OpenTelemetry API.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

__all__: list[str] = []

F = TypeVar("F", bound=Callable[..., Any])


class Hooks(Protocol):
    """What an integration implements; every method is called only while it is installed."""

    def span(self, name: str, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run ``function(*args, **kwargs)`` inside a span ``name`` and return its result."""

    def key_set_fetched(self, issuer: str, outcome: str, seconds: float) -> None:
        """One key-set download (``outcome``: ``success`` or ``failure``) and its duration."""

    def throttled(self, scope: str, per: str) -> None:
        """A request refused by a throttle."""

    def throttle_backend_failed(self, scope: str, per: str) -> None:
        """A throttle whose cache could not be reached."""


#: The installed implementation, or ``None`` (every hook checks this first).
_hooks: Hooks | None = None


def install(hooks: Hooks | None) -> None:
    """Route the hooks to ``hooks`` (``None``: back to no-ops)."""
    global _hooks
    _hooks = hooks


def installed() -> Hooks | None:
    """The implementation the hooks call now, if any."""
    return _hooks


def traced(name: str) -> Callable[[F], F]:
    """Run the decorated function in a span ``name`` while an implementation is installed."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            hooks = _hooks
            if hooks is None:
                return function(*args, **kwargs)
            return hooks.span(name, function, args, kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def key_set_fetched(issuer: str, outcome: str, seconds: float) -> None:
    """Record one key-set download (``outcome``: ``success`` or ``failure``) and its duration."""
    hooks = _hooks
    if hooks is not None:
        hooks.key_set_fetched(issuer, outcome, seconds)


def throttled(scope: str, per: str) -> None:
    """Record a request refused by a throttle."""
    hooks = _hooks
    if hooks is not None:
        hooks.throttled(scope, per)


def throttle_backend_failed(scope: str, per: str) -> None:
    """Record a throttle whose cache could not be reached."""
    hooks = _hooks
    if hooks is not None:
        hooks.throttle_backend_failed(scope, per)
