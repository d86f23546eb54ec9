"""Rate limits per API client, per company and per corporation, counted in a shared cache.

Add the classes to ``REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]`` (or a view's ``throttle_classes``)
and name their rates in ``DEFAULT_THROTTLE_RATES``:

- :class:`ClientRateThrottle`: the rate ``cobee_client``, per API client (issuer and ``client_id``);
- :class:`CompanyRateThrottle`: ``cobee_company``, per company (the token's ``companyId``);
- :class:`CorporationRateThrottle`: ``cobee_corporation``, per corporation (tokens without one are
  not counted);
- :class:`CompanyScopedRateThrottle`: the rate named by the view's ``throttle_scope``, per company.

Only requests whose principal was verified by :class:`~cobee_django.authentication.JWTAuthentication`
are counted: DRF checks throttles after authentication and permissions, so a missing, forged or
rejected token never reaches a counter (it is answered 401 first), and nobody can spend a company's
budget without that company's valid token.

Counting uses fixed windows (aligned per key, so that clients do not all reset at once) and the
cache's atomic ``incr``: every worker process and thread sharing the cache (``THROTTLE_CACHE_ALIAS``,
Redis in production) admits at most the rate per window between them. DRF's own
``SimpleRateThrottle`` keeps a list of timestamps it reads and writes back, which lets concurrent
workers overwrite each other's requests and admit more than the rate.

When the cache cannot be reached the request is refused with 503 and ``Retry-After``
(``THROTTLE_FAIL_OPEN = False``, the default), or admitted unthrottled (``True``), never a 500. A
malformed rate (check ``cobee_django.E051``, see :meth:`PrincipalRateThrottle.parse_rate`) is answered
the same way, with an error in the log naming the scope.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from typing import Any, ClassVar, Literal

from django.core.cache import caches
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from . import instrumentation
from .conf import get_settings
from .exceptions import ThrottleUnavailable
from .principal import ClientPrincipal
from .tokens import ValidatedToken

logger = logging.getLogger("cobee_django.throttling")

KEY_PREFIX = "cobee_django:throttle"
#: Counters outlive their window by this much, so that a request that read the clock just before
#: the window ended still finds its counter (and never recreates it without an expiry).
EXPIRY_MARGIN = 60

_Per = Literal["client", "company", "corporation"]

#: The periods a rate may name, in seconds. DRF reads only a period's first letter (so ``"5/month"``
#: would mean five a minute); these are the spellings whose meaning is not in doubt.
PERIODS: dict[str, int] = {
    **dict.fromkeys(("s", "sec", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
}
_RATE = re.compile(r"(?P<requests>[0-9]+)/(?P<period>[a-z]+)")
RATE_FORMAT = (
    'a rate is "N/period": a whole number of requests per second, minute, hour or day (for example '
    '"100/minute"), or None for no limit'
)


def _parse_throttle_rate(rate: object) -> tuple[int, int] | None:
    """Raises ValueError when ``rate`` is malformed; else ``(requests, seconds)``, ``None`` for no limit.

    The rule of check ``cobee_django.E051``: ``None``, or ``"N/period"`` with ``N`` a whole number and
    ``period`` one of :data:`PERIODS`. DRF's own parser answers anything else with a crash at request
    time (``"abc"``) or a surprise (``"5/month"`` is five a minute).
    """
    if rate is None:
        return None
    match = _RATE.fullmatch(rate) if isinstance(rate, str) else None
    if match is None or match["period"] not in PERIODS:
        raise ValueError(f"{rate!r} is not a rate: {RATE_FORMAT}.")
    return int(match["requests"]), PERIODS[match["period"]]


def _verified_principal(request: Request) -> ClientPrincipal | None:
    """The request's API client if, and only if, a token was verified for it; else ``None``.

    Threat: a principal set by other code (a session user, a test double) must not be charged to, or
    spend, a company's budget; only the pair JWTAuthentication returns is trusted.
    """
    user = request.user
    auth = request.auth
    if isinstance(user, ClientPrincipal) and isinstance(auth, ValidatedToken) and auth.principal is user:
        return user
    return None


def _window(key: str, duration: int, now: float) -> tuple[int, float]:
    """The window of ``key`` holding ``now``: its number and when it ends (epoch seconds).

    Windows last ``duration`` seconds; each key's windows are shifted by an offset derived from the
    key, so that clients' windows do not all end at the same second.
    """
    offset = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % duration
    number = math.floor((now - offset) / duration)
    return number, (number + 1) * duration + offset


class PrincipalRateThrottle(SimpleRateThrottle):
    """Counts requests of a verified principal per ``per`` (client, company or corporation).

    ``scope`` names the rate in ``DEFAULT_THROTTLE_RATES``; a missing scope or a ``None`` rate
    admits everything. Rates are read on each request, so ``override_settings`` works.
    """

    per: ClassVar[_Per] = "client"
    scope: str | None = None

    def __init__(self) -> None:  # DRF's reads the rate once, at import; we read it per request
        self.rate: str | None = None
        self.num_requests: int | None = None
        self.duration: int | None = None
        self._window_end = 0.0

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope) if self.scope else None
        return rate if isinstance(rate, str) else None

    def get_ident_of(self, principal: ClientPrincipal) -> str | None:
        """What is counted for ``principal``; ``None`` leaves the request uncounted."""
        if self.per == "client":
            return principal.pk
        if self.per == "company":
            return str(principal.company_id)
        return str(principal.corporation_id) if principal.corporation_id is not None else None

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        principal = _verified_principal(request)
        ident = self.get_ident_of(principal) if principal is not None else None
        if ident is None:
            return None
        digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
        return f"{KEY_PREFIX}:{self.scope}:{self.per}:{digest}"

    def parse_rate(self, rate: str | None) -> tuple[int | None, int | None]:
        """``rate`` as ``(requests, seconds)`` by :func:`_parse_throttle_rate` (ValueError if malformed)."""
        return _parse_throttle_rate(rate) or (None, None)

    def allow_request(self, request: Request, view: Any) -> bool:
        rate: object = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope) if self.scope else None
        try:
            parsed = _parse_throttle_rate(rate)
        except ValueError:  # check E051 says so at startup; at run time answer, never a 500
            return self._rate_malformed(rate)
        if parsed is None:
            return True
        self.rate = str(rate)
        self.num_requests, self.duration = parsed
        if not self.duration:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        number, self._window_end = _window(key, self.duration, time.time())
        try:
            count = self._count(f"{key}:{number}", self.duration + EXPIRY_MARGIN)
        except Exception as exc:  # the cache is down: answer as configured, never a 500
            return self._backend_failed(exc)
        if count <= self.num_requests:
            return True
        instrumentation.throttled(self.scope or "", self.per)
        return False

    def _count(self, key: str, timeout: int) -> int:
        """Add one to ``key``'s counter atomically and return the new count."""
        cache = caches[get_settings().throttle_cache_alias]
        try:
            count: int = cache.incr(key)
        except ValueError:  # the window's first request (or a race with another first request)
            if cache.add(key, 1, timeout):
                return 1
            return int(cache.incr(key))
        if count == 1:
            # incr created the counter after it expired between the backend's existence check and
            # its increment: give it the expiry it lacks.
            cache.touch(key, timeout)
        return count

    def _rate_malformed(self, rate: object) -> bool:
        settings = get_settings()
        logger.error(
            "The throttle rate of scope %r is malformed (%r; cobee_django.E051): %s; %s.",
            self.scope,
            rate,
            RATE_FORMAT,
            "admitting the request unthrottled" if settings.throttle_fail_open else "refusing the request",
        )
        if settings.throttle_fail_open:
            return True
        raise ThrottleUnavailable(settings.unavailable_retry_after)

    def _backend_failed(self, exc: Exception) -> bool:
        settings = get_settings()
        logger.error(
            "The throttle cache %r failed (%s); %s.",
            settings.throttle_cache_alias,
            type(exc).__name__,
            "admitting the request unthrottled" if settings.throttle_fail_open else "refusing the request",
        )
        instrumentation.throttle_backend_failed(self.scope or "", self.per)
        if settings.throttle_fail_open:
            return True
        raise ThrottleUnavailable(settings.unavailable_retry_after)

    def wait(self) -> float | None:
        """Seconds until the current window ends (DRF's ``Retry-After``)."""
        return max(1.0, math.ceil(self._window_end - time.time()))


class ClientRateThrottle(PrincipalRateThrottle):
    """The rate ``cobee_client``, per API client."""

    per = "client"
    scope = "cobee_client"


class CompanyRateThrottle(PrincipalRateThrottle):
    """The rate ``cobee_company``, per company (every client of a company shares it)."""

    per = "company"
    scope = "cobee_company"


class CorporationRateThrottle(PrincipalRateThrottle):
    """The rate ``cobee_corporation``, per corporation; tokens without a corporation are not counted."""

    per = "corporation"
    scope = "cobee_corporation"


class CompanyScopedRateThrottle(PrincipalRateThrottle):
    """The rate named by the view's ``throttle_scope``, per company; views without one are not counted.

    Subclass it with ``per = "client"`` or ``"corporation"`` to count another principal per scope.
    """

    per = "company"

    def allow_request(self, request: Request, view: Any) -> bool:
        self.scope = getattr(view, "throttle_scope", None)
        return super().allow_request(request, view)


__all__ = [
    "ClientRateThrottle",
    "CompanyRateThrottle",
    "CompanyScopedRateThrottle",
    "CorporationRateThrottle",
    "PrincipalRateThrottle",
]
