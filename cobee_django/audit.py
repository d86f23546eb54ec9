"""Audit records for authentication: the signals of :mod:`cobee_django.signals` and one log line each.

Every rejected token produces exactly one record on the ``cobee_django`` logger, with the reason code,
the client id when the token's signature was valid, and the request id (``X-Request-ID``) when present
and well formed. Records never hold the token, key material or a traceback: a bad token is an ordinary
event. Reasons that point at forgery or misconfiguration are logged at WARNING, the others at INFO.
Each record carries the same fields as attributes (``event``, ``reason``, ``client_id``,
``request_id``) for structured log handlers.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from . import signals
from .reasons import Reason

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
    }
)
REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"
# Request ids come from the client or a proxy: only a plain, short id is echoed into logs.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def request_id(request: Any) -> str | None:
    """The request's ``X-Request-ID`` when it is a plain, short identifier, else ``None``."""
    value = request.META.get(REQUEST_ID_HEADER)
    if isinstance(value, str) and _REQUEST_ID.fullmatch(value):
        return value
    return None


def _send(signal: Any, **kwargs: Any) -> None:
    for receiver, result in signal.send_robust(**kwargs):
        if isinstance(result, Exception):
            logger.error("An audit signal receiver %r failed: %s.", receiver, type(result).__name__)


def token_rejected(sender: Any, request: Any, reason: Reason, client_id: str | None = None) -> None:
    """Send ``token_rejected`` and log one record for a refused credential."""
    rid = request_id(request)
    level = logging.WARNING if reason in WARNING_REASONS else logging.INFO
    if logger.isEnabledFor(level):
        logger.log(
            level,
            "Bearer token rejected: reason=%s client_id=%s request_id=%s",
            reason.value,
            client_id or "-",
            rid or "-",
            extra={"event": "token_rejected", "reason": reason.value, "client_id": client_id, "request_id": rid},
        )
    if signals.token_rejected.receivers:
        _send(
            signals.token_rejected,
            sender=sender,
            request=request,
            reason=reason.value,
            client_id=client_id,
            request_id=rid,
        )


def token_accepted(sender: Any, request: Any, token: Any) -> None:
    """Send ``token_accepted`` (no log record: accepted tokens are the normal case)."""
    if signals.token_accepted.receivers:
        _send(signals.token_accepted, sender=sender, request=request, token=token, principal=token.principal)
