"""Every error cobee_django raises, under :class:`CobeeDjangoError`.

Two kinds:

- **Programming errors and broken tenant rules** (``TenantError`` and the key-set errors): the code
  must be fixed, or an operator must act.
- **HTTP answers** (:class:`CobeeAPIException` and the tenant errors): DRF ``APIException`` subclasses
  with a ``default_code``, so DRF's default exception handler (and a custom handler that calls it)
  answers them with their status, a constant ``detail`` and, for authentication, the RFC 6750
  challenge. A tenancy error escaping a DRF view is therefore never a 500: ``NoTenantBound`` is a
  401 with the Bearer challenge (403 where the view has no challenge to offer, as DRF does for
  ``NotAuthenticated``), ``TenantViolation`` a 403, ``CompanyNotNamed`` a 400 that says how to name
  the company. Their ``str()`` keeps the developer's message for logs; clients get ``detail`` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any

from django.db import OperationalError
from rest_framework import status
from rest_framework.exceptions import APIException, ErrorDetail, NotAuthenticated

from . import bearer

__all__ = [
    "AuthenticationUnavailable",
    "CitusError",
    "CobeeAPIException",
    "CobeeDjangoError",
    "CompanyNotNamed",
    "DatabaseUnavailable",
    "FetchError",
    "InsufficientScope",
    "InvalidDPoPProof",
    "InvalidRequest",
    "InvalidToken",
    "KeySetUnavailable",
    "MalformedTenantHeader",
    "NoTenantBound",
    "NonceRequired",
    "ProofRejected",
    "Reason",
    "ReplayStoreUnavailable",
    "RowLevelSecurityError",
    "ShardOperationError",
    "SignInRefused",
    "StatementDeadlineExceeded",
    "TenantError",
    "TenantViolation",
    "ThrottleUnavailable",
    "TokenRejected",
    "UnusableKey",
    "UseDPoPNonce",
]


class CobeeDjangoError(Exception):
    """Base class of every error cobee_django raises."""


# --- reason codes ------------------------------------------------------------------------------------

# Stable codes for refused tokens. Every rule of the verifier has one. Codes are part of the public
# contract: they appear in the ``token_rejected`` signal and in the ``cobee_django`` log records, so
# dashboards and alerts can key on them. They are never sent to the client, whose answer is always
# the same constant description.


class Reason(str, Enum):
    """Why a token was refused (see the documentation's table of reason codes)."""

    # Transport: the Authorization header and where the token came from.
    MALFORMED_HEADER = "malformed_header"
    MULTIPLE_CREDENTIALS = "multiple_credentials"
    TOKEN_IN_URL_OR_BODY = "token_in_url_or_body"
    # Compact serialization.
    TOO_LARGE = "too_large"
    MALFORMED_TOKEN = "malformed_token"
    BAD_ENCODING = "bad_encoding"
    BAD_JSON = "bad_json"
    # JOSE header.
    ALG_NOT_ALLOWED = "alg_not_allowed"
    BAD_TYP = "bad_typ"
    EMBEDDED_KEY = "embedded_key"
    FORBIDDEN_HEADER = "forbidden_header"
    MISSING_KID = "missing_kid"
    UNKNOWN_KID = "unknown_kid"
    KEY_ALG_MISMATCH = "key_alg_mismatch"
    BAD_SIGNATURE = "bad_signature"
    # Claims.
    BAD_ISSUER = "bad_issuer"
    BAD_AUDIENCE = "bad_audience"
    MISSING_EXP = "missing_exp"
    BAD_TIME_CLAIM = "bad_time_claim"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    ISSUED_IN_FUTURE = "issued_in_future"
    BAD_GRANT_TYPE = "bad_grant_type"
    BAD_CLIENT = "bad_client"
    CLIENT_NOT_ALLOWED = "client_not_allowed"
    BAD_SUBJECT = "bad_subject"
    BAD_SCOPE = "bad_scope"
    BAD_METADATA = "bad_metadata"
    BAD_COMPANY = "bad_company"
    BAD_CORPORATION = "bad_corporation"
    BAD_ORGANIZATION = "bad_organization"
    TENANT_CLAIMS_DISAGREE = "tenant_claims_disagree"
    # Sender constraint (RFC 9449 DPoP, RFC 8705 certificate-bound tokens), answered invalid_token.
    BAD_CONFIRMATION = "bad_confirmation"
    BOUND_TOKEN_AS_BEARER = "bound_token_as_bearer"
    DPOP_REQUIRED = "dpop_required"
    TOKEN_NOT_DPOP_BOUND = "token_not_dpop_bound"
    CERTIFICATE_MISMATCH = "certificate_mismatch"
    # The DPoP proof (RFC 9449 section 4.3), answered invalid_dpop_proof (use_dpop_nonce for the nonce).
    DPOP_MISSING_PROOF = "dpop_missing_proof"
    DPOP_MULTIPLE_PROOFS = "dpop_multiple_proofs"
    DPOP_MALFORMED_PROOF = "dpop_malformed_proof"
    DPOP_BAD_TYP = "dpop_bad_typ"
    DPOP_ALG_NOT_ALLOWED = "dpop_alg_not_allowed"
    DPOP_FORBIDDEN_HEADER = "dpop_forbidden_header"
    DPOP_BAD_KEY = "dpop_bad_key"
    DPOP_PRIVATE_KEY = "dpop_private_key"
    DPOP_BAD_CLAIM = "dpop_bad_claim"
    DPOP_HTM_MISMATCH = "dpop_htm_mismatch"
    DPOP_HTU_MISMATCH = "dpop_htu_mismatch"
    DPOP_IAT_TOO_OLD = "dpop_iat_too_old"
    DPOP_IAT_IN_FUTURE = "dpop_iat_in_future"
    DPOP_ATH_MISMATCH = "dpop_ath_mismatch"
    DPOP_KEY_MISMATCH = "dpop_key_mismatch"
    DPOP_BAD_SIGNATURE = "dpop_bad_signature"
    DPOP_NONCE_REQUIRED = "dpop_nonce_required"
    DPOP_REPLAY = "dpop_replay"
    # The shared store of seen proofs could not be reached (answered 503, unless DPOP_REPLAY_FAIL_OPEN).
    DPOP_REPLAY_STORE_UNAVAILABLE = "dpop_replay_store_unavailable"
    # The issuer's keys could never be fetched (answered 503, not 401).
    KEY_SET_UNAVAILABLE = "key_set_unavailable"
    # Anything the rules above did not foresee (a bug or a library quirk): still a 401, logged loudly.
    VERIFICATION_ERROR = "verification_error"


# --- tokens and keys ---------------------------------------------------------------------------------


class TokenRejected(CobeeDjangoError):
    """A token broke one rule; ``reason`` says which. The message is for logs, never for clients.

    ``client_id`` is set once the signature has been verified, so logs can name a trusted client.
    """

    def __init__(self, reason: Reason, detail: str = "", *, client_id: str | None = None) -> None:
        super().__init__(detail or reason.value)
        self.reason = reason
        self.detail = detail
        self.client_id = client_id


class UnusableKey(CobeeDjangoError, ValueError):
    """A JWKS entry that cannot be trusted as a verification key (skipped, never fatal)."""


class FetchError(CobeeDjangoError):
    """A key-set fetch failed; the message is for operators' logs."""


class KeySetUnavailable(CobeeDjangoError):
    """No key set of ``issuer`` has ever been obtained and the issuer cannot be reached now."""

    def __init__(self, issuer: str) -> None:
        super().__init__(f"no key set available for {issuer}")
        self.issuer = issuer


class ProofRejected(TokenRejected):
    """A DPoP proof broke one rule (RFC 9449 section 4.3); answered ``invalid_dpop_proof``."""


class NonceRequired(ProofRejected):
    """The proof lacks the server's current nonce; answered ``use_dpop_nonce`` with ``nonce``."""

    def __init__(self, reason: Reason, nonce: str) -> None:
        super().__init__(reason)
        self.nonce = nonce


class ReplayStoreUnavailable(CobeeDjangoError):
    """The shared cache of seen DPoP proofs cannot be reached (a 503 unless it fails open)."""


# --- staff sign-in ----------------------------------------------------------------------------------


class SignInRefused(CobeeDjangoError):
    """The OpenID provider's answer cannot sign anyone in to the admin; ``message`` is safe to show.

    ``reason`` (also the ``str()``) is for logs. Importable from :mod:`cobee_django.staff.oidc` too.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(reason)
        self.message = message
        self.reason = reason


# --- HTTP answers ------------------------------------------------------------------------------------


class CobeeAPIException(CobeeDjangoError, APIException):
    """An HTTP answer of cobee_django: DRF's handler turns it into its status and constant ``detail``."""

    def __init__(self, detail: Any = None, code: str | None = None) -> None:
        APIException.__init__(self, detail, code)

    def __str__(self) -> str:
        return APIException.__str__(self)


class InvalidToken(CobeeAPIException):
    """401 ``invalid_token``: the token is malformed, forged, expired or not for us."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = bearer.INVALID_TOKEN_DESCRIPTION
    default_code = bearer.INVALID_TOKEN

    def __init__(self, realm: str | None = None, *, reason: Reason | None = None) -> None:
        super().__init__()
        #: Which rule the token broke (for logs and tests; never sent to the client).
        self.reason = reason
        self.auth_header = bearer.challenge(realm, bearer.INVALID_TOKEN, bearer.INVALID_TOKEN_DESCRIPTION)


class InvalidDPoPProof(CobeeAPIException):
    """401 ``invalid_dpop_proof`` (RFC 9449 section 7.1): the ``DPoP`` proof is missing or fails a rule.

    ``auth_header`` is the challenge (built by :func:`cobee_django.dpop.challenge`, beside the Bearer
    one when both schemes are accepted).
    """

    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = "The DPoP proof is invalid."
    default_code = "invalid_dpop_proof"

    def __init__(self, auth_header: str, *, reason: Reason | None = None) -> None:
        super().__init__()
        #: Which rule the proof broke (for logs and tests; never sent to the client).
        self.reason = reason
        self.auth_header = auth_header


class UseDPoPNonce(InvalidDPoPProof):
    """401 ``use_dpop_nonce`` (RFC 9449 section 8): retry with the nonce of the ``DPoP-Nonce`` header."""

    default_detail = "Retry with the nonce of the DPoP-Nonce header in the proof."
    default_code = "use_dpop_nonce"

    def __init__(self, auth_header: str, nonce: str, *, reason: Reason | None = None) -> None:
        super().__init__(auth_header, reason=reason)
        #: Sent in the ``DPoP-Nonce`` header.
        self.nonce = nonce


class InvalidRequest(CobeeAPIException):
    """400 ``invalid_request``: several credentials, a token outside the header, a malformed header."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = bearer.INVALID_REQUEST_DESCRIPTION
    default_code = bearer.INVALID_REQUEST

    def __init__(self, realm: str | None = None, *, reason: Reason | None = None) -> None:
        super().__init__()
        #: Which transport rule the request broke (for logs and tests; never sent to the client).
        self.reason = reason
        self.auth_header = bearer.challenge(realm, bearer.INVALID_REQUEST, bearer.INVALID_REQUEST_DESCRIPTION)


class InsufficientScope(CobeeAPIException):
    """403 ``insufficient_scope``, naming the scopes the request needs (for views that raise it)."""

    status_code = status.HTTP_403_FORBIDDEN
    default_detail = bearer.INSUFFICIENT_SCOPE_DESCRIPTION
    default_code = bearer.INSUFFICIENT_SCOPE

    def __init__(self, scopes: Iterable[str] | None = None, realm: str | None = None) -> None:
        super().__init__()
        self.scopes = tuple(scopes or ())
        self.auth_header = bearer.challenge(
            realm, bearer.INSUFFICIENT_SCOPE, bearer.INSUFFICIENT_SCOPE_DESCRIPTION, self.scopes
        )


class _RetryLater(CobeeAPIException):
    """503 with ``Retry-After``: something the request needs cannot be reached now."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is temporarily unavailable; retry later."
    default_code = "temporarily_unavailable"

    def __init__(self, retry_after: int, *, reason: Reason | None = None) -> None:
        super().__init__()
        #: ``Reason.KEY_SET_UNAVAILABLE`` when raised by the authenticator (for logs and tests).
        self.reason = reason
        self.wait = retry_after


class AuthenticationUnavailable(_RetryLater):
    """503: the issuer's keys have never been obtained and the issuer cannot be reached."""

    default_detail = "Authentication is temporarily unavailable; retry later."


class DatabaseUnavailable(_RetryLater):
    """503: the database could not be reached in time (down, restarting, hung, a shard moving).

    ``fault`` is the :class:`~cobee_django.db.faults.DatabaseFault` code, for logs and metrics
    only; the client gets the constant ``detail`` and ``Retry-After``.
    """

    def __init__(self, retry_after: int, fault: str = "") -> None:
        super().__init__(retry_after)
        self.fault = fault


class ThrottleUnavailable(_RetryLater):
    """503: the throttle's cache cannot be reached and ``THROTTLE_FAIL_OPEN`` is off."""

    default_detail = "Rate limiting is temporarily unavailable; retry later."


class StatementDeadlineExceeded(CobeeDjangoError, OperationalError):
    """A statement outlived its session's ``statement_timeout`` by a second: the database did not
    answer, even to cancel it (a hung node), and its connection was shut down (answered 503)."""


# --- tenancy -----------------------------------------------------------------------------------------


class TenantError(CobeeDjangoError):
    """A tenant rule was broken."""


class _TenantAnswer(CobeeDjangoError, APIException):
    """A tenant error as an HTTP answer: constant ``detail`` for clients, the message in ``str()``."""

    def __init__(self, *args: Any) -> None:
        Exception.__init__(self, *args)
        self.detail = ErrorDetail(str(self.default_detail), self.default_code)

    def __str__(self) -> str:
        return Exception.__str__(self)


class NoTenantBound(TenantError, _TenantAnswer, NotAuthenticated):
    """A tenant model was queried or written with no tenant bound (fail closed).

    Inside a DRF view it is DRF's ``NotAuthenticated``: a 401 with the view's Bearer challenge (the
    anonymous caller of a view that forgot its permission classes), whose detail names the missing
    permission class.
    """

    default_detail = (
        "No tenant is bound to this request: the view's permission classes lack HasTenant "
        "(or CanAccessCompany, CanAccessCorporation)."
    )
    default_code = "no_tenant"


class TenantViolation(TenantError, _TenantAnswer):
    """A write would put a row, or a reference, outside the bound tenant (403 inside a DRF view)."""

    status_code: int = status.HTTP_403_FORBIDDEN
    default_detail = "This write would reach outside the companies your credentials reach."
    default_code = "tenant_violation"


class CompanyNotNamed(TenantViolation):
    """A new row has no company and several are bound (a corporation token): 400 inside a DRF view."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = (
        "Your credentials reach several companies: name the company of the new row, in the URL "
        "(a view under companies/{companyId}/ with CompanyFromURLMixin) or in its company field."
    )
    default_code = "company_required"


# --- databases ---------------------------------------------------------------------------------------


class CitusError(CobeeDjangoError):
    """The database is Citus, and it cannot do what was asked: distribute a table, move a row between companies."""


class ShardOperationError(CitusError):
    """A Citus shard operation was refused (it would lose rows), or its row counts changed (rolled back)."""


class RowLevelSecurityError(CobeeDjangoError):
    """Row-level security is on, but the database connection would not be held by it."""


# --- background tasks --------------------------------------------------------------------------------


class MalformedTenantHeader(TenantError):
    """A Celery task message's tenant header is not one ``cobee_django.contrib.celery`` wrote."""
