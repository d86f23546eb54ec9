"""Audit records: the signals of :mod:`cobee_django.signals` and one structured log line per event.

Records go to the ``cobee_django`` logger. Each carries, as attributes for structured handlers
(and in its message for plain ones): ``event``, ``reason``, ``client_id`` (an API client) or
``user_id`` (a staff user), ``company_id``, ``corporation_id`` and ``request_id`` (``X-Request-ID``
when present and well formed), plus ``method`` and ``path`` (never the query string) for access
decisions. Records never hold the token, key material or a traceback: a bad token or a refused
request is an ordinary event.

========================  =========================================================  =====================
event                     when                                                       level
========================  =========================================================  =====================
``token_rejected``        a credential is refused (exactly one record per request)   WARNING for forgery or
                                                                                     misconfiguration
                                                                                     reasons, else INFO
``access_denied``         an authenticated request is answered 403, or 404 for       WARNING for another
                          another tenant's object                                    tenant's data, else
                                                                                     INFO
``database_unavailable``  a request is answered 503: the database could not be       WARNING
                          reached in time (see :mod:`cobee_django.db.faults`)
``token_accepted``        a token is verified                                        DEBUG
``tenant_bound``          a request's tenant is resolved                             DEBUG
========================  =========================================================  =====================
"""

from __future__ import annotations

import logging
import re
from enum import Enum
from typing import Any

from . import signals
from .exceptions import Reason
from .principal import ClientPrincipal

__all__ = ["Denial", "deny"]

logger = logging.getLogger("cobee_django")

#: Reasons that suggest an attack or a broken configuration rather than an expired or misused token.
WARNING_REASONS = frozenset(
    {
        Reason.ALG_NOT_ALLOWED,
        Reason.EMBEDDED_KEY,
        Reason.FORBIDDEN_HEADER,
        Reason.KEY_ALG_MISMATCH,
        Reason.BAD_SIGNATURE,
        Reason.VERIFICATION_ERROR,
        # A bound token presented without its key or certificate: most likely stolen.
        Reason.BOUND_TOKEN_AS_BEARER,
        Reason.CERTIFICATE_MISMATCH,
        Reason.DPOP_KEY_MISMATCH,
        Reason.DPOP_REPLAY,
        Reason.DPOP_PRIVATE_KEY,
        Reason.DPOP_ALG_NOT_ALLOWED,
        Reason.DPOP_BAD_SIGNATURE,
    }
)
REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"
# Request ids come from the client or a proxy: only a plain, short id is echoed into logs.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
#: Attribute of the ``HttpRequest`` where permission classes leave why they refused it.
DENIAL_ATTR = "cobee_denial"


class Denial(str, Enum):
    """Why an authenticated request was refused (the ``access_denied`` reason codes)."""

    #: The token lacks a scope the view requires (``HasScopes``; 403 ``insufficient_scope``).
    INSUFFICIENT_SCOPE = "insufficient_scope"
    #: No tenant is bound: the user has no company (``HasTenant``; a staff user without grants).
    NO_TENANT = "no_tenant"
    #: The company in the URL is not one the caller reaches (``CanAccessCompany``).
    COMPANY_NOT_REACHABLE = "company_not_reachable"
    #: The corporation in the URL is not the caller's (``CanAccessCorporation``).
    CORPORATION_NOT_REACHABLE = "corporation_not_reachable"
    #: An object of another tenant was reached and answered 404 (object-level checks).
    OBJECT_NOT_REACHABLE = "object_not_reachable"
    #: Any other 403 answered to an API client (your own permission classes).
    PERMISSION_DENIED = "permission_denied"


#: Denials that point at another tenant's data: someone probing across the wall.
WARNING_DENIALS = frozenset(
    {Denial.COMPANY_NOT_REACHABLE, Denial.CORPORATION_NOT_REACHABLE, Denial.OBJECT_NOT_REACHABLE}
)


def _request_id(request: Any) -> str | None:
    """The request's ``X-Request-ID`` when it is a plain, short identifier, else ``None``."""
    value = request.META.get(REQUEST_ID_HEADER)
    if isinstance(value, str) and _REQUEST_ID.fullmatch(value):
        return value
    return None


def _printable(value: str, limit: int = 200) -> str:
    # Paths are decoded client input: a newline in one must not forge a second log line.
    return "".join(c if c.isprintable() and c != " " else "?" for c in value[:limit])


def _send(signal: Any, **kwargs: Any) -> None:
    for receiver, result in signal.send_robust(**kwargs):
        if isinstance(result, Exception):
            logger.error("An audit signal receiver %r failed: %s.", receiver, type(result).__name__)


def _who(principal: Any) -> dict[str, Any]:
    """The identifying fields of a user: an API client's ids, or a staff user's primary key."""
    if isinstance(principal, ClientPrincipal):
        corporation = principal.corporation_id
        return {
            "client_id": principal.client_id,
            "user_id": None,
            "company_id": str(principal.company_id),
            "corporation_id": str(corporation) if corporation is not None else None,
        }
    user_id = getattr(principal, "pk", None) if getattr(principal, "is_authenticated", False) else None
    return {
        "client_id": None,
        "user_id": str(user_id) if user_id is not None else None,
        "company_id": None,
        "corporation_id": None,
    }


def _log(level: int, event: str, reason: str | None, fields: dict[str, Any], **extra: Any) -> None:
    record = {"event": event, "reason": reason, **fields, **extra}
    message = " ".join(f"{name}={'-' if value is None else value}" for name, value in record.items())
    logger.log(level, "%s", message, extra=record)


def token_rejected(sender: Any, request: Any, reason: Reason, client_id: str | None = None) -> None:
    """Send ``token_rejected`` and log one record for a refused credential."""
    level = logging.WARNING if reason in WARNING_REASONS else logging.INFO
    logged = logger.isEnabledFor(level)
    sent = bool(signals.token_rejected.receivers)
    if not (logged or sent):
        return  # nobody reads it: not even the request id is computed
    rid = _request_id(request)
    if logged:
        fields = {"client_id": client_id, "user_id": None, "company_id": None, "corporation_id": None}
        _log(level, "token_rejected", reason.value, fields, request_id=rid)
    if sent:
        _send(
            signals.token_rejected,
            sender=sender,
            request=request,
            reason=reason.value,
            client_id=client_id,
            request_id=rid,
        )


def token_accepted(sender: Any, request: Any, token: Any) -> None:
    """Send ``token_accepted``; a DEBUG record (accepted tokens are the normal case)."""
    logged = logger.isEnabledFor(logging.DEBUG)
    sent = bool(signals.token_accepted.receivers)
    if not (logged or sent):
        return  # the path of every authenticated request: nothing more to pay
    rid = _request_id(request)
    if logged:
        _log(logging.DEBUG, "token_accepted", None, _who(token.principal), request_id=rid)
    if sent:
        _send(
            signals.token_accepted,
            sender=sender,
            request=request,
            token=token,
            principal=token.principal,
            request_id=rid,
        )


def tenant_bound(sender: Any, request: Any, tenant: Any, principal: Any) -> None:
    """Send ``tenant_bound``; a DEBUG record naming the companies the request now sees."""
    if logger.isEnabledFor(logging.DEBUG):
        fields = _who(principal)
        if tenant.corporation_id is not None:
            fields["corporation_id"] = str(tenant.corporation_id)
        companies = ",".join(sorted(str(c) for c in tenant.company_ids)) or None
        _log(logging.DEBUG, "tenant_bound", None, fields, request_id=_request_id(request), companies=companies)
    if signals.tenant_bound.receivers:
        _send(
            signals.tenant_bound,
            sender=sender,
            request=request,
            tenant=tenant,
            principal=principal,
            request_id=_request_id(request),
        )


def deny(request: Any, reason: Denial) -> None:
    """Note why ``request`` is being refused; the middleware records it once the response is 403/404.

    Accepts a DRF request or an ``HttpRequest``. The first reason noted wins.
    """
    django_request = getattr(request, "_request", request)
    if getattr(django_request, DENIAL_ATTR, None) is None:
        setattr(django_request, DENIAL_ATTR, reason)


def access_denied(sender: Any, request: Any, status: int, tenant: Any) -> None:
    """Record the refusal of ``request`` (an ``HttpRequest``) if it was one; called with the response.

    A refusal is a 403 or 404 for which a reason was noted with :func:`deny`, or any 403 answered to
    an authenticated API client (``permission_denied``). Other responses record nothing.
    """
    reason = getattr(request, DENIAL_ATTR, None)
    user = getattr(request, "user", None)
    if reason is None:
        if status != 403 or not isinstance(user, ClientPrincipal):
            return
        reason = Denial.PERMISSION_DENIED
    elif status != 403 and not (status == 404 and reason is Denial.OBJECT_NOT_REACHABLE):
        return  # noted, but the request went on (a permission composed with |) and ended otherwise
    level = logging.WARNING if reason in WARNING_DENIALS else logging.INFO
    logged = logger.isEnabledFor(level)
    sent = bool(signals.access_denied.receivers)
    if not (logged or sent):
        return
    rid = _request_id(request)
    if logged:
        fields = _who(user)
        _log(
            level,
            "access_denied",
            reason.value,
            fields,
            request_id=rid,
            status=status,
            method=_printable(request.method or ""),
            path=_printable(request.path),
        )
    if sent:
        _send(
            signals.access_denied,
            sender=sender,
            request=request,
            reason=reason.value,
            status=status,
            principal=user,
            tenant=tenant,
            request_id=rid,
        )


def _error_line(error: BaseException) -> str:
    """The first line of a database error's message, for operators (it names a node, never data)."""
    lines = str(error).strip().splitlines()
    return _printable(lines[0] if lines else type(error).__name__)


def database_unavailable(sender: Any, request: Any, reason: Any, error: BaseException) -> None:
    """Send ``database_unavailable`` and log one WARNING record for a request answered 503.

    The record names the error's type, SQLSTATE and first line (e.g. which Citus worker failed);
    the client's answer names none of it.
    """
    user = getattr(request, "user", None)
    rid = _request_id(request)
    if logger.isEnabledFor(logging.WARNING):
        cause = error
        while cause.__cause__ is not None:  # the driver's own error, under Django's (and a deadline's)
            cause = cause.__cause__
        state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        _log(
            logging.WARNING,
            "database_unavailable",
            reason.value,
            _who(user),
            request_id=rid,
            method=_printable(request.method or ""),
            path=_printable(request.path),
            error_type=type(cause).__name__,
            sqlstate=state if isinstance(state, str) else None,
            error=_error_line(cause),
        )
    if signals.database_unavailable.receivers:
        _send(
            signals.database_unavailable,
            sender=sender,
            request=request,
            reason=reason.value,
            error=error,
            principal=user,
            request_id=rid,
        )
