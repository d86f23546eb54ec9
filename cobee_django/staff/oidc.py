"""Staff sign-in through OpenID Connect (mozilla-django-oidc), e.g. against Auth0.

:class:`StaffOIDCBackend` turns a verified ID token (and the userinfo answer) into a Django staff
user and the companies that person may manage:

- the user is found by the OIDC subject, stored as a :class:`~cobee_django.models.StaffIdentity`
  (issuer + ``sub``), never by email: an email address is not proof of identity;
- the metadata claim (``COBEE_DJANGO["METADATA_CLAIM"]``) names a ``companyId`` and/or a
  ``corporationId`` the person may manage; ``COBEE_DJANGO["ADMIN_STAFF_CLAIM"]`` set to ``true``
  marks Cobee-wide staff, who reach every company;
- the grants that came from claims are replaced at each sign-in; grants a superuser made by hand
  in the admin are kept;
- malformed claims refuse the sign-in with a message on the login page, and change nothing;
- every request to the provider (token, key set, userinfo) has a timeout: ``OIDC_TIMEOUT``, or
  :data:`DEFAULT_OIDC_TIMEOUT` when it is unset (mozilla-django-oidc's own default waits forever).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import SuspiciousOperation
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from ..conf import get_settings
from ..exceptions import SignInRefused
from ..models import Company, Corporation, StaffGrant, StaffIdentity, _GrantSource
from ..uuids import parse_uuid

__all__ = ["StaffClaims", "StaffOIDCBackend"]

logger = logging.getLogger("cobee_django.oidc")

#: Messages shown on the login page when a sign-in is refused. Constant: never echo claim content.
REFUSED_TOKEN = "Sign-in refused: the identity provider's answer could not be verified."
REFUSED_CLAIMS = "Sign-in refused: your account's company claims are malformed. Ask your administrator to fix them."
REFUSED_INACTIVE = "Sign-in refused: this account is disabled."

_MAX_SUBJECT = 255

#: Seconds to connect to the provider, and to wait for each read of its answer, when the project
#: sets no ``OIDC_TIMEOUT`` (or sets it to ``None``): a provider that stops answering must not hold
#: a worker, and the person signing in, forever.
DEFAULT_OIDC_TIMEOUT = 10.0


@dataclass(frozen=True)
class StaffClaims:
    """What the provider says about a person: who they are and what they may manage."""

    issuer: str
    subject: str
    company_id: uuid.UUID | None
    corporation_id: uuid.UUID | None
    all_companies: bool
    email: str
    first_name: str
    last_name: str


def _uuid_claim(metadata: Mapping[str, Any], name: str) -> uuid.UUID | None:
    if name not in metadata:
        return None
    value = metadata[name]
    if not isinstance(value, str):
        raise SignInRefused(REFUSED_CLAIMS, f"{name} is not a string")
    # The one UUID rule, as in access tokens: braces, urn: prefixes, upper case and missing dashes
    # are other spellings of an id, and ids compared as strings must compare the same.
    parsed = parse_uuid(value)
    if parsed is None:
        raise SignInRefused(REFUSED_CLAIMS, f"{name} is not a UUID in canonical form")
    return parsed


def _text(claims: Mapping[str, Any], name: str, limit: int) -> str:
    value = claims.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _parse_staff_claims(claims: Mapping[str, Any], *, issuer: str) -> StaffClaims:
    """Read the staff claims of a verified ID token (merged with userinfo); raise :class:`SignInRefused`."""
    settings = get_settings()
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > _MAX_SUBJECT:
        raise SignInRefused(REFUSED_TOKEN, "sub missing or invalid")
    metadata = claims.get(settings.metadata_claim, {})
    if not isinstance(metadata, Mapping):
        raise SignInRefused(REFUSED_CLAIMS, "metadata claim is not an object")
    all_companies = False
    if settings.admin_staff_claim is not None and settings.admin_staff_claim in claims:
        flag = claims[settings.admin_staff_claim]
        if not isinstance(flag, bool):
            raise SignInRefused(REFUSED_CLAIMS, "staff claim is not a boolean")
        all_companies = flag
    # An email is shown in the admin only when the provider vouches for it; it never identifies.
    email = _text(claims, "email", 254) if claims.get("email_verified") is True else ""
    return StaffClaims(
        issuer=issuer,
        subject=subject,
        company_id=_uuid_claim(metadata, "companyId"),
        corporation_id=_uuid_claim(metadata, "corporationId"),
        all_companies=all_companies,
        email=email,
        first_name=_text(claims, "given_name", 150),
        last_name=_text(claims, "family_name", 150),
    )


def _username_for(issuer: str, subject: str) -> str:
    """A stable, opaque username per identity (emails and names collide and change)."""
    digest = hashlib.sha256(f"{issuer}\x00{subject}".encode()).digest()
    return "oidc-" + base64.b32encode(digest).decode("ascii").lower().rstrip("=")[:26]


def _expected_issuer() -> str:
    """The ``iss`` staff ID tokens must carry: ``ADMIN_OIDC_ISSUER``, else the first trusted issuer."""
    settings = get_settings()
    if settings.admin_oidc_issuer:
        return settings.admin_oidc_issuer
    return settings.issuers[0].issuer


class StaffOIDCBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    """mozilla-django-oidc's backend, matching users by subject and syncing their company grants.

    Hooks: :meth:`check_id_token` (extra ID token rules), :meth:`configure_new_user` (fields of a
    created user), :meth:`sync_grants` (claims to grants).
    """

    request: HttpRequest | None

    @staticmethod
    def get_settings(attr: str, *args: Any) -> Any:
        """mozilla-django-oidc's settings, with a timeout (:data:`DEFAULT_OIDC_TIMEOUT`) when none is set."""
        value = OIDCAuthenticationBackend.get_settings(attr, *args)
        if attr == "OIDC_TIMEOUT" and value is None:
            return DEFAULT_OIDC_TIMEOUT
        return value

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        """Sign in from the provider's callback; an unreachable or misbehaving provider refuses, never 500s."""
        try:
            return super().authenticate(request, **kwargs)
        except (requests.RequestException, SuspiciousOperation, jwt.PyJWTError, ValueError) as exc:
            # Unreachable provider, error answer, bad signature, expired token, wrong nonce, broken
            # JSON: nobody is signed in, and the person is told so on the login page.
            logger.warning("OIDC sign-in failed: %s", type(exc).__name__)
            self._tell(REFUSED_TOKEN)
            return None

    def get_or_create_user(self, access_token: str, id_token: str, payload: Mapping[str, Any]) -> Any:
        try:
            self.check_id_token(payload)
            userinfo = self.get_userinfo(access_token, id_token, payload)
            if not isinstance(userinfo, Mapping) or userinfo.get("sub") != payload.get("sub"):
                # OIDC Core 5.3.2: userinfo about someone else must not sign this person in.
                raise SignInRefused(REFUSED_TOKEN, "userinfo sub differs from the ID token's")
            # The signed ID token wins over userinfo where both speak.
            claims = _parse_staff_claims({**userinfo, **payload}, issuer=payload["iss"])
            user = self.sign_in(claims)
        except SignInRefused as refused:
            logger.warning("OIDC sign-in refused: %s", refused.reason)
            self._tell(refused.message)
            return None
        if not user.is_active:
            self._tell(REFUSED_INACTIVE)
            return None
        return user

    def check_id_token(self, payload: Mapping[str, Any]) -> None:
        """The ID token was issued by the configured issuer, for this client (OIDC Core 3.1.3.7)."""
        if payload.get("iss") != _expected_issuer():
            raise SignInRefused(REFUSED_TOKEN, "iss is not the configured issuer")
        client_id = self.OIDC_RP_CLIENT_ID
        audience = payload.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or client_id not in audiences:
            raise SignInRefused(REFUSED_TOKEN, "aud does not name this client")
        if len(audiences) > 1 and payload.get("azp") != client_id:
            raise SignInRefused(REFUSED_TOKEN, "azp does not name this client")
        if not isinstance(payload.get("exp"), (int, float)) or isinstance(payload.get("exp"), bool):
            raise SignInRefused(REFUSED_TOKEN, "exp missing")

    def sign_in(self, claims: StaffClaims) -> Any:
        """Find or create the user of ``claims`` and bring their OIDC grants up to date."""
        try:
            return self._sign_in(claims)
        except IntegrityError:
            # Two first sign-ins of one person at once: the other created the identity; use it.
            return self._sign_in(claims)

    def _sign_in(self, claims: StaffClaims) -> Any:
        with transaction.atomic():
            identity = (
                StaffIdentity.objects.select_for_update()
                .select_related("user")
                .filter(issuer=claims.issuer, subject=claims.subject)
                .first()
            )
            if identity is None:
                user = get_user_model()(username=self._free_username(_username_for(claims.issuer, claims.subject)))
                user.set_unusable_password()
                self.configure_new_user(user, claims)
                user.save()
                identity = StaffIdentity(user=user, issuer=claims.issuer, subject=claims.subject)
            user = identity.user
            self.update_profile(user, claims)
            identity.all_companies = claims.all_companies
            identity.last_sign_in = timezone.now()
            identity.save()
            self.sync_grants(user, claims)
            self.sync_groups(user)
        return user

    @staticmethod
    def _free_username(base: str) -> str:
        # Taken when a superuser deleted the identity but kept its user: that user is not reused.
        manager = get_user_model()._default_manager
        name, n = base, 1
        while manager.filter(username=name).exists():
            n += 1
            name = f"{base}-{n}"
        return name

    def configure_new_user(self, user: Any, claims: StaffClaims) -> None:
        """Set the fields of a user created at first sign-in: a staff user without a password."""
        user.is_staff = True

    def update_profile(self, user: Any, claims: StaffClaims) -> None:
        """Refresh the display fields from the claims (never used to find the user)."""
        changed = []
        for field, value in (
            ("email", claims.email),
            ("first_name", claims.first_name),
            ("last_name", claims.last_name),
        ):
            if hasattr(user, field) and value and getattr(user, field) != value:
                setattr(user, field, value)
                changed.append(field)
        if changed:
            user.save(update_fields=changed)

    def sync_grants(self, user: AbstractBaseUser, claims: StaffClaims) -> None:
        """Replace the user's OIDC grants with those of ``claims``; admin grants stay as they are."""
        StaffGrant.objects.filter(user=user, source=_GrantSource.OIDC).delete()
        if claims.corporation_id is not None:
            corporation, _ = Corporation.objects.get_or_create(id=claims.corporation_id)
            if not StaffGrant.objects.filter(user=user, corporation=corporation).exists():
                StaffGrant.objects.create(user=user, corporation=corporation, source=_GrantSource.OIDC)
        if claims.company_id is not None:
            company, _ = Company.objects.get_or_create(id=claims.company_id)
            if not StaffGrant.objects.filter(user=user, company=company).exists():
                StaffGrant.objects.create(user=user, company=company, source=_GrantSource.OIDC)

    def sync_groups(self, user: Any) -> None:
        """Put the user in ``ADMIN_OIDC_GROUPS`` (their Django permissions); missing groups are logged."""
        names = get_settings().admin_oidc_groups
        if not names:
            return
        groups = list(Group.objects.filter(name__in=names))
        missing = set(names) - {g.name for g in groups}
        if missing:
            logger.warning("ADMIN_OIDC_GROUPS names groups that do not exist: %s", ", ".join(sorted(missing)))
        user.groups.add(*groups)

    def _tell(self, message: str) -> None:
        request = getattr(self, "request", None)
        if request is not None and hasattr(request, "_messages"):
            messages.error(request, message)
