"""Reading a request's credential, for every way of serving: DRF, plain Django views, Django Ninja.

:class:`RequestAuthenticator` takes a Django ``HttpRequest``, finds its one credential, verifies it
with :func:`cobee_django.tokens.verify_token`, records the outcome (the audit signals and log records,
the ``cobee_django.authenticate`` span) and returns the :class:`~cobee_django.tokens.ValidatedToken`,
or ``None`` when the request carries no credential of a scheme it knows. Everything else raises one
of the HTTP answers of :mod:`cobee_django.exceptions`, each carrying its ``status_code``, its constant
``detail``, the ``Reason`` (``reason``) and its challenge (``auth_header``; ``wait`` for the 503):

=====================================================  ======  ==================================
Request                                                Status  Error
=====================================================  ======  ==================================
a token that fails any rule                            401     ``InvalidToken`` (``invalid_token``)
two credentials, a token in the URL or form body,      400     ``InvalidRequest``
a malformed ``Authorization`` header                           (``invalid_request``)
no key set could ever be fetched from the issuer       503     ``AuthenticationUnavailable``
=====================================================  ======  ==================================

DRF's :class:`~cobee_django.authentication.JWTAuthentication`, the plain-view decorator and mixin of
:mod:`cobee_django.views` and ``cobee_django.contrib.ninja`` all call it; :func:`error_response` turns
an error into the JSON answer for the surfaces that are not DRF.

The ``Authorization`` header is parsed in one place, :meth:`RequestAuthenticator.read_authorization`,
which names the scheme, and verified in one place, :meth:`RequestAuthenticator.verify`, which dispatches
on it: a new scheme (DPoP, RFC 9449) or a binding to the client's certificate (RFC 8705) is added there.

Verification is synchronous: it may download the issuer's key set. Async code calls
:meth:`RequestAuthenticator.aauthenticate`, which runs it in a worker thread (``sync_to_async``), so a
key-set download never blocks the event loop.
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any, NoReturn

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_cache_control, patch_vary_headers

from . import audit, bearer, dpop, instrumentation, mtls
from .conf import get_settings
from .exceptions import (
    AuthenticationUnavailable,
    CobeeAPIException,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    KeySetUnavailable,
    NonceRequired,
    ProofRejected,
    Reason,
    ReplayStoreUnavailable,
    TokenRejected,
    UseDPoPNonce,
)
from .tokens import ValidatedToken, verify_token

__all__ = ["BEARER", "Credential", "RequestAuthenticator", "authenticate", "error_response"]

#: The scheme of ``Authorization: Bearer <token>`` (RFC 6750), as :class:`Credential` names it.
BEARER = "bearer"

_TOKEN68 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")
#: Reasons answered 400 ``invalid_request`` rather than 401 ``invalid_token``.
_REQUEST_REASONS = frozenset({Reason.MALFORMED_HEADER, Reason.MULTIPLE_CREDENTIALS, Reason.TOKEN_IN_URL_OR_BODY})


class Credential(tuple[str, str]):
    """The one credential of a request: its scheme (lower case, e.g. ``"bearer"``) and its token.

    ``repr`` leaves the token out, so a credential in a log line or a traceback leaks nothing.
    Read-only and compared by value with other credentials. A tuple underneath: one is built per
    request, and a tuple is built at half the cost of a slotted class.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        scheme: str
        token: str
    else:
        scheme = property(itemgetter(0), doc="The scheme, lower case.")
        token = property(itemgetter(1), doc="The token, never shown by ``repr``.")

    def __new__(cls, scheme: str, token: str) -> Credential:
        return tuple.__new__(cls, (scheme, token))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return f"Credential(scheme={self.scheme!r})"


def _has_url_token(request: HttpRequest) -> bool:
    # Threat: ``access%5Ftoken=`` or ``%61ccess_token=`` hid a token in the URL from a check on the raw
    # query string; the decoded parameters are what a cache or a log reader sees.
    # Only a percent escape can disguise the name, so other query strings are not parsed here.
    query = request.META.get("QUERY_STRING", "")
    return ("access_token" in query or "%" in query) and "access_token" in request.GET


def _has_form_token(request: HttpRequest) -> bool:
    # Threat: a media type in other letter case (``Application/X-WWW-Form-Urlencoded``) is still a form
    # body; ``content_type`` is Django's own lower-cased reading, the one that decides if it parses one.
    if getattr(request, "content_type", None) != "application/x-www-form-urlencoded":
        return False
    return "access_token" in request.POST


class RequestAuthenticator:
    """Find, verify and record the credential of a request; see the module docstring for the answers.

    ``realm`` (default: the ``REALM`` setting) goes into every challenge; ``sender`` is the ``sender``
    of the audit signals (the DRF authentication class, the view; default: this class).
    Subclasses extend :attr:`schemes`, :meth:`read_authorization` and :meth:`verify`.
    """

    #: The ``Authorization`` schemes read, lower case; a header of another scheme is not ours (``None``).
    schemes: tuple[str, ...] = (BEARER,)

    def __init__(self, realm: str | None = None, sender: Any = None) -> None:
        self.realm = realm
        self.sender = sender if sender is not None else type(self)
        self._schemes_memo: tuple[dpop.ProofVerifier, tuple[str, ...]] | None = None

    @instrumentation.traced("cobee_django.authenticate")
    def authenticate(self, request: HttpRequest) -> ValidatedToken | None:
        """The request's verified token, ``None`` without a credential; raises the HTTP answer otherwise.

        ``request`` is an ``HttpRequest``, or DRF's ``Request`` (the audit signals receive it as given).
        """
        django_request = getattr(request, "_request", request)  # DRF's Request wraps the HttpRequest
        meta = django_request.META
        header = meta.get("HTTP_AUTHORIZATION")
        # RFC 6750 allows tokens in the URL and the form body; URLs end up in logs and caches, so we
        # refuse them, and a second credential could be a confused-deputy trick.
        if (meta.get("QUERY_STRING") and _has_url_token(django_request)) or (
            meta.get("REQUEST_METHOD") not in ("GET", "HEAD") and _has_form_token(django_request)
        ):
            self.reject(request, Reason.MULTIPLE_CREDENTIALS if header else Reason.TOKEN_IN_URL_OR_BODY)
        if header is None:
            return None
        credential = self.read_authorization(request, header)
        if credential is None:
            return None
        return self.verify(request, credential)

    async def aauthenticate(self, request: HttpRequest) -> ValidatedToken | None:
        """:meth:`authenticate` for async code: it runs in a worker thread (a key-set download may block)."""
        return await sync_to_async(self.authenticate)(request)

    def get_schemes(self) -> tuple[str, ...]:
        """The schemes read: :attr:`schemes`, and ``"dpop"`` unless ``DPOP_MODE`` is ``disabled``."""
        verifier = dpop.get_proof_verifier()
        memo = self._schemes_memo
        if memo is not None and memo[0] is verifier:  # one tuple per settings, not one per request
            return memo[1]
        schemes = self.schemes
        if verifier.mode != "disabled" and dpop.DPOP not in schemes:
            schemes = (*schemes, dpop.DPOP)
        self._schemes_memo = (verifier, schemes)
        return schemes

    def read_authorization(self, request: HttpRequest, header: str) -> Credential | None:
        """The credential of an ``Authorization`` header; ``None`` for a scheme not in :meth:`get_schemes`."""
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        # ``schemes`` first: it is always part of get_schemes(), and most requests name one of it.
        if scheme not in self.schemes and scheme not in (schemes := self.get_schemes()):
            # Threat: a credential of ours behind a tab (``Bearer<TAB>token``) or after another scheme's
            # (two Authorization headers joined by a comma) was read as no credential at all.
            first = scheme.split("\t", 1)[0]
            if first != scheme and first in schemes:
                self.reject(request, Reason.MALFORMED_HEADER, scheme=first)
            for part in header.split(",")[1:]:
                other = part.strip(" \t").split(" ", 1)[0].split("\t", 1)[0].lower()
                if other in schemes:
                    self.reject(request, Reason.MULTIPLE_CREDENTIALS, scheme=other)
            return None
        # RFC 6750 section 2.1: ``"Bearer" 1*SP b64token``; several spaces are still one credential.
        # RFC 9449 section 7.1 writes ``DPoP`` the same way.
        value = value.lstrip(" ")
        if not value:
            self.reject(request, Reason.MALFORMED_HEADER, scheme=scheme)
        # A comma (a second credential) or a space in the value is refused by verify(), when the token
        # fails: a valid token never holds either, so the common case does not scan for them.
        return Credential(scheme, value)

    def verify(self, request: HttpRequest, credential: Credential) -> ValidatedToken:
        """Verify ``credential`` under its scheme, record the outcome, and return the validated token.

        After the token itself, its sender constraint: the DPoP rules (:func:`cobee_django.dpop.check_request`:
        a proof for a DPoP token, no bound token as Bearer, ``DPOP_MODE``) and the certificate
        binding (:func:`cobee_django.mtls.check_certificate_binding`).
        """
        scheme, token = credential  # a tuple underneath: unpacked without two property calls
        django_request: HttpRequest = getattr(request, "_request", request)  # DRF wraps the HttpRequest
        try:
            validated = verify_token(token)
        except TokenRejected as exc:
            if "," in token:
                # Two credentials (e.g. two Authorization headers joined by a comma): a confused deputy.
                self.reject(request, Reason.MULTIPLE_CREDENTIALS, scheme=scheme)
            if not _TOKEN68.issuperset(token):
                # Not even token68 (RFC 7235): a malformed request rather than a bad token. Checked
                # only on failure, since the strict parser already refuses such characters.
                self.reject(request, Reason.MALFORMED_HEADER, scheme=scheme)
            self.reject(request, exc.reason, exc.client_id, scheme=scheme)
        except KeySetUnavailable:
            audit.token_rejected(self.sender, request, Reason.KEY_SET_UNAVAILABLE)
            raise AuthenticationUnavailable(
                get_settings().unavailable_retry_after, reason=Reason.KEY_SET_UNAVAILABLE
            ) from None
        try:
            claims = validated.claims
            dpop.check_request(django_request, scheme, token, claims, validated.client_id)
            if "cnf" in claims:  # only a confirmation claim can bind the token to a certificate
                mtls.check_certificate_binding(django_request, claims)
        except NonceRequired as exc:
            audit.token_rejected(self.sender, request, exc.reason, validated.client_id)
            dpop.remember_nonce(django_request, exc.nonce)
            challenge = dpop.www_authenticate(
                self.realm, dpop.DPOP, dpop.USE_DPOP_NONCE, dpop.USE_DPOP_NONCE_DESCRIPTION
            )
            raise UseDPoPNonce(challenge, exc.nonce, reason=exc.reason) from None
        except ProofRejected as exc:
            audit.token_rejected(self.sender, request, exc.reason, validated.client_id)
            challenge = dpop.www_authenticate(
                self.realm, dpop.DPOP, dpop.INVALID_DPOP_PROOF, dpop.INVALID_DPOP_PROOF_DESCRIPTION
            )
            raise InvalidDPoPProof(challenge, reason=exc.reason) from None
        except TokenRejected as exc:
            self.reject(request, exc.reason, validated.client_id, scheme=scheme)
        except ReplayStoreUnavailable:
            audit.token_rejected(self.sender, request, Reason.DPOP_REPLAY_STORE_UNAVAILABLE, validated.client_id)
            raise AuthenticationUnavailable(
                get_settings().unavailable_retry_after, reason=Reason.DPOP_REPLAY_STORE_UNAVAILABLE
            ) from None
        audit.token_accepted(self.sender, request, validated)
        return validated

    def reject(
        self, request: HttpRequest, reason: Reason, client_id: str | None = None, *, scheme: str = BEARER
    ) -> NoReturn:
        """Record the rejection and raise the matching RFC 6750 error (never returns).

        The challenge names the error on the ``scheme`` the request used, beside the other accepted
        scheme's challenge (:func:`cobee_django.dpop.www_authenticate`).
        """
        audit.token_rejected(self.sender, request, reason, client_id)
        error: InvalidRequest | InvalidToken
        if reason in _REQUEST_REASONS:
            error = InvalidRequest(self.realm, reason=reason)
            code, description = bearer.INVALID_REQUEST, bearer.INVALID_REQUEST_DESCRIPTION
        else:
            error = InvalidToken(self.realm, reason=reason)
            code, description = bearer.INVALID_TOKEN, bearer.INVALID_TOKEN_DESCRIPTION
        error.auth_header = dpop.www_authenticate(self.realm, scheme, code, description)
        raise error

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` of a request without credentials: every scheme accepted."""
        return dpop.www_authenticate(self.realm)


def authenticate(request: HttpRequest, *, realm: str | None = None, sender: Any = None) -> ValidatedToken | None:
    """:meth:`RequestAuthenticator.authenticate` with the default authenticator."""
    return RequestAuthenticator(realm, sender).authenticate(request)


def error_response(error: CobeeAPIException) -> HttpResponse:
    """The JSON answer of an HTTP error, for views outside DRF: ``{"detail": ...}``, status and headers.

    It carries the challenge (``WWW-Authenticate``) or ``Retry-After`` the error holds, and keeps shared
    caches out: an error answered to one client must not be served to the next.
    """
    response = JsonResponse({"detail": str(error.detail)}, status=error.status_code)
    auth_header = getattr(error, "auth_header", None)
    if auth_header:
        response["WWW-Authenticate"] = auth_header
    wait = getattr(error, "wait", None)
    if wait is not None:
        response["Retry-After"] = str(int(wait))
    nonce = getattr(error, "nonce", None)
    if isinstance(nonce, str):
        response["DPoP-Nonce"] = nonce
    patch_cache_control(response, private=True)
    patch_vary_headers(response, ["Authorization"])
    return response
