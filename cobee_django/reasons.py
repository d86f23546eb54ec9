"""Stable reason codes for rejected tokens (the exception that carries them is in ``exceptions``).

Every rule of the verifier has one code. Codes are part of the public contract: they appear in the
``token_rejected`` signal and in the ``cobee_django`` log records, so dashboards and alerts can key on
them. They are never sent to the client, whose answer is always the same constant description.
"""

from __future__ import annotations

from enum import Enum

# Moved to cobee_django.exceptions; kept importable from here (deprecated).
from .exceptions import TokenRejected as TokenRejected

__all__ = ["Reason"]


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
    # The issuer's keys could never be fetched (answered 503, not 401).
    KEY_SET_UNAVAILABLE = "key_set_unavailable"
    # Anything the rules above did not foresee (a bug or a library quirk): still a 401, logged loudly.
    VERIFICATION_ERROR = "verification_error"
