"""Access-token verification: signature, claims and the tenant claim, with a validated-token cache.

:func:`verify_token` is the whole pipeline behind :class:`~cobee_django.authentication.JWTAuthentication`:
strict parsing (:mod:`cobee_django.jose`), the issuer chosen by exact ``iss``, the key chosen by exact
``kid`` among that issuer's trusted keys (:mod:`cobee_django.jwks`), the pinned-algorithm signature,
then every claim rule below. Each failure raises :class:`~cobee_django.exceptions.TokenRejected` with a
reason code.

Claim rules (exact JSON types everywhere: ``true`` is not a number, ``"123"`` is not a date):

- ``iss`` is exactly one configured issuer; ``aud`` is a string, or a non-empty list of strings, that
  contains one of that issuer's audiences;
- ``exp`` is required; ``exp``, ``nbf`` and ``iat`` are NumericDates (an integer or a finite number
  with a fraction) checked with ``LEEWAY`` seconds of clock skew; ``iat`` is not a maximum age;
- ``gty`` is in ``ALLOWED_GRANT_TYPES`` and the client in ``ALLOWED_CLIENTS`` (when set);
- with ``AUTH0_CLAIMS`` (Auth0 machine-to-machine tokens) the client is ``azp`` and ``sub`` is
  exactly ``{azp}@clients``; without it (RFC 9068) the client is ``client_id``, else ``azp``;
- the tenant comes from ``TENANT_CLAIMS``: by default the ``METADATA_CLAIM`` object holding
  ``companyId`` (a UUID in canonical form) and optionally ``corporationId`` (same form); or Auth0's
  ``org_id`` (an organization id, mapped to its company by ``ORGANIZATION_RESOLVER``; the corporation
  still from the metadata claim); or a custom claim path (canonical UUIDs). A token carrying another
  of these sources as well must name the same company there, else it is refused
  (``tenant_claims_disagree``);
- ``scope`` is a space-separated string of RFC 6749 scope tokens; Auth0's ``permissions`` array,
  when present, adds its entries;
- ``cnf``, when present, is an object holding only ``jkt`` (DPoP, RFC 9449) and/or ``x5t#S256``
  (certificate-bound, RFC 8705), each a base64url SHA-256 thumbprint; whether the request presents
  that key or certificate is checked per request (:mod:`cobee_django.dpop`, :mod:`cobee_django.mtls`).
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import FrozenInstanceError
from types import MappingProxyType
from typing import Any, NoReturn

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from . import jwks
from .conf import IssuerSettings, Settings, get_settings, is_reloading
from .exceptions import KeySetUnavailable, Reason, TokenRejected
from .jose import CompactParser
from .principal import ClientPrincipal
from .uuids import parse_uuid

__all__ = ["ValidatedToken", "verify_token"]

_SCOPES = re.compile(r"(?:[\x21\x23-\x5b\x5d-\x7e]+(?: [\x21\x23-\x5b\x5d-\x7e]+)*)?")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_MAX_CLIENT_ID = 256
_UUID_CACHE_SIZE = 4096
#: Confirmation methods understood: a DPoP key thumbprint and a certificate thumbprint (both SHA-256).
_CONFIRMATION_MEMBERS = frozenset({"jkt", "x5t#S256"})
_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")
#: Auth0 organization ids: ``org_`` and letters and digits.
_ORG_ID = re.compile(r"org_[A-Za-z0-9]{1,64}")


_TOKEN_FIELDS = ("claims", "header", "issuer", "principal", "expires_at", "key_generation")


class ValidatedToken:
    """A token that passed every rule: DRF's ``request.auth`` for API calls.

    It does not keep the encoded token, so it can be logged or shown without leaking a credential.
    Read-only (assignments raise ``dataclasses.FrozenInstanceError``, an ``AttributeError``, as they
    did when it was a frozen dataclass). A slotted class rather than a frozen dataclass: one is built for every token
    verified, and a frozen dataclass's ``__init__`` costs twice as much.
    """

    __slots__ = _TOKEN_FIELDS

    claims: Mapping[str, Any]
    header: Mapping[str, Any]
    issuer: IssuerSettings
    principal: ClientPrincipal
    expires_at: float
    key_generation: int

    def __init__(
        self,
        claims: Mapping[str, Any],
        header: Mapping[str, Any],
        issuer: IssuerSettings,
        principal: ClientPrincipal,
        expires_at: float,
        key_generation: int,
    ) -> None:
        # The slots' own setters: __setattr__ below refuses every assignment.
        _set_claims(self, claims)
        _set_header(self, header)
        _set_issuer(self, issuer)
        _set_principal(self, principal)
        _set_expires_at(self, expires_at)
        _set_key_generation(self, key_generation)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise FrozenInstanceError(f"ValidatedToken is read-only: cannot assign {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise FrozenInstanceError(f"ValidatedToken is read-only: cannot delete {name!r}")

    def __repr__(self) -> str:
        return (
            f"ValidatedToken(client_id={self.client_id!r}, issuer={self.issuer.issuer!r},"
            f" expires_at={self.expires_at!r})"
        )

    @property
    def client_id(self) -> str:
        return self.principal.client_id

    @property
    def scopes(self) -> frozenset[str]:
        return self.principal.scopes


(_set_claims, _set_header, _set_issuer, _set_principal, _set_expires_at, _set_key_generation) = (
    ValidatedToken.__dict__[name].__set__ for name in _TOKEN_FIELDS
)


def _numeric_date(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    kind = type(value)
    # bool is an int subclass and NaN never compares as expired: both are refused by exact type.
    if kind is int or (kind is float and math.isfinite(value)):
        return float(value)
    raise TokenRejected(Reason.BAD_TIME_CLAIM, f"{name} is not a NumericDate")


class TokenVerifier:
    """Verifies tokens under one :class:`~cobee_django.conf.Settings`; rebuilt when settings change."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.parser = CompactParser(settings.algorithms, settings.max_token_bytes)
        self.issuers = {entry.issuer: entry for entry in settings.issuers}
        self.leeway = settings.leeway
        self.metadata_claim = settings.metadata_claim
        self.tenant_claims = settings.tenant_claims
        self.organization_resolver: Callable[[str], Any] | None = (
            import_string(settings.organization_resolver) if settings.organization_resolver else None
        )
        self._organizations: dict[str, uuid.UUID] = {}
        self.cache_size = settings.token_cache_size
        self._cache: dict[str, ValidatedToken] = {}
        self._cache_lock = threading.Lock()
        self._uuids: dict[str, uuid.UUID] = {}
        self._scope_sets: dict[str, frozenset[str]] = {}

    def verify(self, token: str) -> ValidatedToken:
        """The validated form of ``token``; raises ``TokenRejected`` or ``KeySetUnavailable``."""
        cached = self._cache.get(token)
        if cached is not None and cached.expires_at > time.time():
            # Looking the key up refreshes a key set older than its TTL: a key the issuer withdrew
            # (say, compromised) stops its cached tokens within the TTL, not only when a new token
            # happens to trigger a refresh. A withdrawn key raises ``unknown_kid`` here.
            jwks.keys_for(cached.issuer).get_key(cached.header["kid"])
            if cached.key_generation == jwks.key_generation:
                return cached
        try:
            validated = self._verify(token)
        except (TokenRejected, KeySetUnavailable):
            raise
        except Exception as exc:
            # josepy, cryptography and the standard library raise many unrelated types on hostile
            # input; whatever slipped past the rules is still a bad token, never a server error.
            raise TokenRejected(Reason.VERIFICATION_ERROR, type(exc).__name__) from None
        if self.cache_size:
            self._remember(token, validated)
        return validated

    def _remember(self, token: str, validated: ValidatedToken) -> None:
        with self._cache_lock:
            cache = self._cache
            if len(cache) >= self.cache_size:
                # Drop the older half at once (dicts keep insertion order): never above the bound,
                # and amortized O(1) per insertion without a linked list to maintain.
                for stale in list(itertools.islice(cache, len(cache) - self.cache_size // 2)):
                    del cache[stale]
            cache[token] = validated

    def clear_cache(self) -> None:
        """Forget every validated token (they will be verified again on next use)."""
        with self._cache_lock:
            self._cache.clear()

    @property
    def cached_tokens(self) -> int:
        return len(self._cache)

    def _verify(self, token: str) -> ValidatedToken:
        generation = jwks.key_generation
        jws = self.parser.parse(token)
        claims = jws.payload
        iss = claims.get("iss")
        issuer = self.issuers.get(iss) if type(iss) is str else None
        if issuer is None:
            raise TokenRejected(Reason.BAD_ISSUER)
        jwks.keys_for(issuer).get_key(jws.header.kid).verify(jws)
        # From here the claims are signed by a trusted key; failures may name the client in logs.
        client_id = self._client_id(claims, issuer)
        try:
            expires_at = self._check_claims(claims, issuer)
            company_id, corporation_id = self._tenant(claims)
            scopes = self._scopes(claims)
            if "cnf" in claims:
                self._check_confirmation(claims["cnf"])
        except TokenRejected as exc:
            exc.client_id = client_id
            raise
        frozen_claims = MappingProxyType(claims)
        principal = ClientPrincipal(
            client_id=client_id,
            company_id=company_id,
            corporation_id=corporation_id,
            scopes=scopes,
            issuer=issuer.issuer,
            claims=frozen_claims,
        )
        return ValidatedToken(frozen_claims, jws.header.fields, issuer, principal, expires_at, generation)

    def _client_id(self, claims: Mapping[str, Any], issuer: IssuerSettings) -> str:
        azp = claims.get("azp")
        if issuer.auth0_claims:
            client_id = azp
            if type(client_id) is not str:
                raise TokenRejected(Reason.BAD_CLIENT, "azp missing")
            if claims.get("sub") != client_id + "@clients":
                raise TokenRejected(Reason.BAD_SUBJECT)
        else:
            client_id = claims.get("client_id", azp)
            if type(client_id) is not str:
                raise TokenRejected(Reason.BAD_CLIENT, "client_id missing")
            if azp is not None and azp != client_id:
                raise TokenRejected(Reason.BAD_CLIENT, "azp differs from client_id")
            if "sub" in claims and type(claims["sub"]) is not str:
                raise TokenRejected(Reason.BAD_SUBJECT)
        if not client_id or len(client_id) > _MAX_CLIENT_ID or not client_id.isprintable():
            raise TokenRejected(Reason.BAD_CLIENT, "client id malformed")
        if issuer.allowed_clients is not None and client_id not in issuer.allowed_clients:
            raise TokenRejected(Reason.CLIENT_NOT_ALLOWED)
        return client_id

    def _check_claims(self, claims: Mapping[str, Any], issuer: IssuerSettings) -> float:
        """The audience, times and grant type; returns ``exp``."""
        aud = claims.get("aud")
        if type(aud) is str:
            if aud not in issuer.audiences:
                raise TokenRejected(Reason.BAD_AUDIENCE)
        elif type(aud) is list and aud and all(type(item) is str for item in aud):
            if issuer.audiences.isdisjoint(aud):
                raise TokenRejected(Reason.BAD_AUDIENCE)
        else:
            raise TokenRejected(Reason.BAD_AUDIENCE, "aud missing or mistyped")
        now = time.time()
        leeway = self.leeway
        exp = claims.get("exp")
        if exp is None:
            raise TokenRejected(Reason.BAD_TIME_CLAIM if "exp" in claims else Reason.MISSING_EXP)
        # Exact types: bool is an int subclass and NaN never compares as expired.
        if not (type(exp) is int or (type(exp) is float and math.isfinite(exp))):
            raise TokenRejected(Reason.BAD_TIME_CLAIM, "exp is not a NumericDate")
        if now >= exp + leeway:
            raise TokenRejected(Reason.EXPIRED)
        if "nbf" in claims:
            nbf = _numeric_date(claims, "nbf")
            if nbf > now + leeway:
                raise TokenRejected(Reason.NOT_YET_VALID)
        if "iat" in claims:
            iat = _numeric_date(claims, "iat")
            if iat > now + leeway:
                raise TokenRejected(Reason.ISSUED_IN_FUTURE)
        gty = claims.get("gty")
        if gty is not None and type(gty) is not str:
            raise TokenRejected(Reason.BAD_GRANT_TYPE)
        allowed_grants = issuer.allowed_grant_types
        if allowed_grants is not None and gty not in allowed_grants:
            raise TokenRejected(Reason.BAD_GRANT_TYPE)
        return float(exp)

    def _tenant(self, claims: Mapping[str, Any]) -> tuple[uuid.UUID, uuid.UUID | None]:
        """The company and corporation of ``claims`` from the ``TENANT_CLAIMS`` source.

        Every other source the token also carries must name the same company (and corporation):
        one token, one tenant, whichever claim a reader looks at.
        """
        source = self.tenant_claims
        metadata_present = self.metadata_claim in claims
        corporation_id: uuid.UUID | None
        if source == "metadata":
            company_id, corporation_id = self._from_metadata(claims)
        elif source == "org_id":
            company_id = self._from_organization(claims)
            corporation_id = None
            if metadata_present:
                # Auth0 organizations are flat: the corporation still comes from the metadata claim.
                metadata = self._metadata(claims)
                corporation_id = self._uuid(metadata, "corporationId", Reason.BAD_CORPORATION)
        else:
            found = self._at_path(claims, source["company"], Reason.BAD_COMPANY)
            if found is None:
                raise TokenRejected(Reason.BAD_COMPANY, "company claim missing")
            company_id = found
            corporation_path = source.get("corporation")
            corporation_id = (
                self._at_path(claims, corporation_path, Reason.BAD_CORPORATION) if corporation_path else None
            )
        # Threat: two tenant claims in one token, each reader trusting another one (one claim, one meaning).
        if source != "metadata" and metadata_present:
            metadata = self._metadata(claims)
            other = self._uuid(metadata, "companyId", Reason.BAD_COMPANY)
            if other is not None and other != company_id:
                raise TokenRejected(Reason.TENANT_CLAIMS_DISAGREE)
            other_corporation = self._uuid(metadata, "corporationId", Reason.BAD_CORPORATION)
            if other_corporation is not None and other_corporation != corporation_id:
                raise TokenRejected(Reason.TENANT_CLAIMS_DISAGREE)
        if (
            source != "org_id"
            and "org_id" in claims
            and self.organization_resolver is not None
            and self._from_organization(claims) != company_id
        ):
            raise TokenRejected(Reason.TENANT_CLAIMS_DISAGREE)
        return company_id, corporation_id

    def _metadata(self, claims: Mapping[str, Any]) -> Mapping[str, Any]:
        metadata = claims.get(self.metadata_claim)
        if type(metadata) is not dict or not metadata:
            raise TokenRejected(Reason.BAD_METADATA)
        return metadata

    def _from_metadata(self, claims: Mapping[str, Any]) -> tuple[uuid.UUID, uuid.UUID | None]:
        metadata = self._metadata(claims)
        company_id = self._uuid(metadata, "companyId", Reason.BAD_COMPANY)
        if company_id is None:
            raise TokenRejected(Reason.BAD_COMPANY, "companyId missing")
        return company_id, self._uuid(metadata, "corporationId", Reason.BAD_CORPORATION)

    def _from_organization(self, claims: Mapping[str, Any]) -> uuid.UUID:
        """The company of the Auth0 organization in ``org_id``, by ``ORGANIZATION_RESOLVER``."""
        org_id = claims.get("org_id")
        if type(org_id) is not str or not _ORG_ID.fullmatch(org_id):
            raise TokenRejected(Reason.BAD_ORGANIZATION)
        company_id = self._organizations.get(org_id)
        if company_id is None:
            resolver = self.organization_resolver
            if resolver is None:
                raise TokenRejected(Reason.BAD_ORGANIZATION, "no ORGANIZATION_RESOLVER")
            company_id = parse_uuid(resolver(org_id))
            if company_id is None:
                # An organization no company is registered for (not remembered: it may be added later).
                raise TokenRejected(Reason.BAD_ORGANIZATION, "unknown organization")
            if len(self._organizations) >= _UUID_CACHE_SIZE:
                self._organizations.clear()
            self._organizations[org_id] = company_id
        return company_id

    def _at_path(self, claims: Mapping[str, Any], path: tuple[str, ...], reason: Reason) -> uuid.UUID | None:
        """The canonical UUID at ``path`` (a claim, then members inside it); ``None`` when absent."""
        holder: Any = claims
        for member in path[:-1]:
            holder = holder.get(member)  # the claims, then an object checked below
            if holder is None:
                return None
            if type(holder) is not dict:
                raise TokenRejected(reason, f"{member} is not an object")
        return self._uuid(holder, path[-1], reason)

    def _uuid(self, metadata: Mapping[str, Any], name: str, reason: Reason) -> uuid.UUID | None:
        value = metadata.get(name)
        if value is None:
            if name in metadata:
                raise TokenRejected(reason, f"{name} is null")
            return None
        if type(value) is not str:
            raise TokenRejected(reason, f"{name} is not a string")
        parsed = self._uuids.get(value)
        if parsed is None:
            # Canonical form only (cobee_django.uuids): one id, one spelling.
            parsed = parse_uuid(value)
            if parsed is None:
                raise TokenRejected(reason, f"{name} is not a canonical UUID")
            if len(self._uuids) >= _UUID_CACHE_SIZE:
                self._uuids.clear()
            self._uuids[value] = parsed
        return parsed

    def _check_confirmation(self, cnf: Any) -> None:
        """``cnf`` (RFC 7800) names the key (``jkt``, RFC 9449) or certificate (``x5t#S256``, RFC 8705)
        the token is bound to; the binding itself is checked per request (``dpop``, ``mtls``)."""
        # Threat: a binding this verifier cannot check, ignored, would make a bound token a bearer one.
        if (
            type(cnf) is not dict
            or not cnf
            or not _CONFIRMATION_MEMBERS.issuperset(cnf)
            or not all(type(value) is str and _THUMBPRINT.fullmatch(value) for value in cnf.values())
        ):
            raise TokenRejected(Reason.BAD_CONFIRMATION)

    def _scopes(self, claims: Mapping[str, Any]) -> frozenset[str]:
        scope = claims.get("scope", "")
        permissions = claims.get("permissions")
        if permissions is None and type(scope) is str:
            # A client's tokens repeat one scope string: its parsed form is remembered (bounded).
            known = self._scope_sets.get(scope)
            if known is not None:
                return known
        if type(scope) is not str or not _SCOPES.fullmatch(scope):
            raise TokenRejected(Reason.BAD_SCOPE, "scope malformed")
        scopes = scope.split(" ") if scope else []
        if permissions is None:
            parsed = frozenset(scopes)
            if len(self._scope_sets) >= _UUID_CACHE_SIZE:
                self._scope_sets.clear()
            self._scope_sets[scope] = parsed
            return parsed
        if permissions is not None:
            if type(permissions) is not list or not all(
                type(item) is str and _SCOPE_TOKEN.fullmatch(item) for item in permissions
            ):
                raise TokenRejected(Reason.BAD_SCOPE, "permissions malformed")
            scopes.extend(permissions)
        return frozenset(scopes)


_verifier: TokenVerifier | None = None
_verifier_lock = threading.Lock()


def get_verifier() -> TokenVerifier:
    """The process-wide verifier for the current settings."""
    verifier = _verifier
    if verifier is None:
        verifier = _build_verifier()
    return verifier


def _build_verifier() -> TokenVerifier:
    global _verifier
    with _verifier_lock:
        if _verifier is None:
            _verifier = TokenVerifier(get_settings())
        return _verifier


def verify_token(token: str) -> ValidatedToken:
    """Verify an encoded access token under the project's settings (see the module docstring)."""
    verifier = _verifier
    if verifier is None:
        verifier = _build_verifier()
    return verifier.verify(token)


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    global _verifier
    if is_reloading(setting):
        _verifier = None
