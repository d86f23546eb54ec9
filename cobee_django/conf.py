"""The ``COBEE_DJANGO`` settings dict: defaults, validation and typed, cached access.

Everything the app reads from Django settings goes through :func:`get_settings`. The result is
built once, validated, and dropped again when Django's ``setting_changed`` signal fires, so
``override_settings(COBEE_DJANGO=...)`` works in tests. :func:`validate` is shared with the
system checks, so a misconfiguration is reported the same way at ``manage.py check`` time and
raised as ``ImproperlyConfigured`` if code runs anyway.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING_NAME = "COBEE_DJANGO"

#: Algorithms the verifier knows how to pin. Only RSA signatures: the issuer is Auth0.
SUPPORTED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})

DEFAULTS: dict[str, Any] = {
    # Who issues the tokens we accept. Either ISSUER/AUDIENCE/JWKS_URL for one issuer, or ISSUERS.
    "ISSUER": None,
    "AUDIENCE": None,
    "JWKS_URL": None,
    "ISSUERS": None,
    # Signature and claim rules.
    "ALGORITHMS": ["RS256"],
    "LEEWAY": 30,
    "MAX_TOKEN_BYTES": 16 * 1024,
    "ALLOWED_GRANT_TYPES": ["client-credentials"],
    "ALLOWED_CLIENTS": None,
    "AUTH0_CLAIMS": True,
    "METADATA_CLAIM": "https://auth.cobee.io/metadata",
    "REALM": "api",
    # Key set fetching and caching.
    "JWKS_TIMEOUT": 5.0,
    "JWKS_MAX_BYTES": 1024 * 1024,
    "JWKS_CACHE_TTL": 600,
    "JWKS_REFRESH_COOLDOWN": 30,
    "JWKS_CACHE_ALIAS": "default",
    "UNAVAILABLE_RETRY_AFTER": 30,
    # Verified tokens kept in process, so a reused token pays for RSA once.
    "TOKEN_CACHE_SIZE": 10_000,
    # Tenancy.
    "PROVISION_MEMBERSHIP": True,
    "MEMBERSHIP_RESOLVER": None,
    "COMPANY_URL_KWARG": "companyId",
    "CORPORATION_URL_KWARG": "corporationId",
    # Admin.
    "ADMIN_STAFF_CLAIM": "https://auth.cobee.io/staff",
    "ADMIN_SESSION_KEY": "cobee_django_active_tenant",
    "ADMIN_OIDC_ISSUER": None,
    "ADMIN_OIDC_GROUPS": [],
    # PostgreSQL row-level security (off by default).
    "ROW_LEVEL_SECURITY": False,
    # OpenAPI (drf-spectacular): where clients get tokens; None means {ISSUER}oauth/token.
    "OPENAPI_TOKEN_URL": None,
    # Throttling (cobee_django.throttling): where counts live, and what to do when that cache is down.
    "THROTTLE_CACHE_ALIAS": "default",
    "THROTTLE_FAIL_OPEN": False,
    # OpenTelemetry spans and metrics (the optional extra "otel").
    "TELEMETRY": False,
}

#: Keys an entry of ``ISSUERS`` may hold; each falls back to the top-level key of the same name.
ISSUER_KEYS = frozenset({"ISSUER", "AUDIENCE", "JWKS_URL", "ALLOWED_GRANT_TYPES", "ALLOWED_CLIENTS", "AUTH0_CLAIMS"})

LOOPBACK_HOSTS = frozenset({"localhost"})
_SUPPORTED = ", ".join(sorted(SUPPORTED_ALGORITHMS))


class Problem(NamedTuple):
    """One misconfiguration, reported by a system check with this id."""

    id: str
    msg: str
    hint: str


@dataclass(frozen=True)
class IssuerSettings:
    """What we trust from one issuer."""

    issuer: str
    audiences: frozenset[str]
    jwks_url: str
    allowed_grant_types: frozenset[str] | None
    allowed_clients: frozenset[str] | None
    auth0_claims: bool


@dataclass(frozen=True)
class Settings:
    """The validated, typed form of ``COBEE_DJANGO``."""

    issuers: tuple[IssuerSettings, ...]
    algorithms: frozenset[str]
    leeway: float
    max_token_bytes: int
    metadata_claim: str
    realm: str
    jwks_timeout: float
    jwks_max_bytes: int
    jwks_cache_ttl: float
    jwks_refresh_cooldown: float
    jwks_cache_alias: str | None
    unavailable_retry_after: int
    token_cache_size: int
    provision_membership: bool
    membership_resolver: str | None
    company_url_kwarg: str
    corporation_url_kwarg: str
    admin_staff_claim: str | None
    admin_session_key: str
    admin_oidc_issuer: str | None
    admin_oidc_groups: tuple[str, ...]
    row_level_security: bool
    openapi_token_url: str | None
    throttle_cache_alias: str
    throttle_fail_open: bool
    telemetry: bool
    raw: Mapping[str, Any]

    def issuer(self, iss: str) -> IssuerSettings | None:
        """The trusted issuer whose ``iss`` is exactly ``iss``, if any."""
        for entry in self.issuers:
            if entry.issuer == iss:
                return entry
        return None


def user_settings() -> dict[str, Any]:
    """The raw ``COBEE_DJANGO`` dict of the project (empty when unset)."""
    value = getattr(django_settings, SETTING_NAME, None)
    return dict(value) if isinstance(value, Mapping) else {}


def is_loopback_url(url: str) -> bool:
    """True when ``url`` points at this machine (127.0.0.0/8, ::1 or localhost)."""
    host = urlsplit(url).hostname or ""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_safe_url(url: str) -> bool:
    # Keys fetched over plain http from another host can be swapped by anyone on the path.
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback_url(url))


def _as_str_set(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)


def _issuer_entries(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each issuer entry with the top-level defaults filled in."""
    entries = raw.get("ISSUERS")
    if entries is None:
        entries = [{"ISSUER": raw.get("ISSUER")}] if raw.get("ISSUER") is not None else []
    merged = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            merged.append({"__invalid__": entry})
            continue
        full = {key: raw.get(key, DEFAULTS[key]) for key in ISSUER_KEYS}
        full.update(entry)
        merged.append(full)
    return merged


def _check_number(raw: Mapping[str, Any], key: str, *, minimum: float, integer: bool) -> list[Problem]:
    value: Any = raw.get(key, DEFAULTS[key])
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        value = None
    if value is None or not math.isfinite(value):
        return [
            Problem(
                "cobee_django.E006",
                f"COBEE_DJANGO['{key}'] must be a number.",
                f"Set it to a number of at least {minimum}.",
            )
        ]
    if value < minimum:
        return [
            Problem(
                "cobee_django.E006",
                f"COBEE_DJANGO['{key}'] must be at least {minimum}.",
                f"The default is {DEFAULTS[key]}.",
            )
        ]
    return []


def validate(raw: Mapping[str, Any]) -> list[Problem]:
    """Every problem in the raw ``COBEE_DJANGO`` dict; an empty list means it is usable."""
    problems: list[Problem] = []
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        problems.append(
            Problem(
                "cobee_django.E005",
                f"Unknown COBEE_DJANGO keys: {', '.join(unknown)}.",
                "Check the spelling against the settings reference; unknown keys are never read.",
            )
        )
    if raw.get("ISSUERS") is not None and (raw.get("ISSUER") is not None or raw.get("JWKS_URL") is not None):
        problems.append(
            Problem(
                "cobee_django.E007",
                "COBEE_DJANGO sets both ISSUERS and ISSUER/JWKS_URL.",
                "Use ISSUER, AUDIENCE and JWKS_URL for one issuer, or list every issuer in ISSUERS.",
            )
        )
    entries = _issuer_entries(raw)
    if not entries:
        problems.append(
            Problem(
                "cobee_django.E001",
                "COBEE_DJANGO has no ISSUER.",
                "Set COBEE_DJANGO['ISSUER'] to your Auth0 tenant's issuer, e.g. 'https://example.eu.auth0.com/'.",
            )
        )
    for entry in entries:
        if "__invalid__" in entry:
            problems.append(
                Problem(
                    "cobee_django.E006",
                    "Each entry of COBEE_DJANGO['ISSUERS'] must be a dict.",
                    "See the settings reference.",
                )
            )
            continue
        extra = sorted(set(entry) - ISSUER_KEYS)
        if extra:
            problems.append(
                Problem(
                    "cobee_django.E005",
                    f"Unknown keys in an ISSUERS entry: {', '.join(extra)}.",
                    f"An entry may hold {', '.join(sorted(ISSUER_KEYS))}.",
                )
            )
        issuer = entry.get("ISSUER")
        if not isinstance(issuer, str) or not issuer:
            problems.append(
                Problem(
                    "cobee_django.E001",
                    "An issuer has no ISSUER.",
                    "Every ISSUERS entry needs its ISSUER (the exact 'iss' of its tokens).",
                )
            )
            continue
        if not _is_safe_url(issuer):
            problems.append(
                Problem(
                    "cobee_django.E003",
                    f"The issuer {issuer!r} is not an https URL.",
                    "Use the https issuer URL; plain http is accepted only for 127.0.0.1 and localhost.",
                )
            )
        audience = entry.get("AUDIENCE")
        if isinstance(audience, str):
            audience = [audience]
        if (
            not audience
            or not isinstance(audience, (list, tuple, set, frozenset))
            or not all(isinstance(a, str) and a for a in audience)
        ):
            problems.append(
                Problem(
                    "cobee_django.E002",
                    f"The issuer {issuer!r} has no AUDIENCE.",
                    "Set AUDIENCE to your API's identifier in Auth0 (a string, or a list of strings).",
                )
            )
        jwks_url = entry.get("JWKS_URL")
        if jwks_url is not None and (not isinstance(jwks_url, str) or not _is_safe_url(jwks_url)):
            problems.append(
                Problem(
                    "cobee_django.E004",
                    f"JWKS_URL {jwks_url!r} is not an https URL.",
                    "Keys must come over https; plain http is accepted only for 127.0.0.1 and localhost.",
                )
            )
        for key in ("ALLOWED_GRANT_TYPES", "ALLOWED_CLIENTS"):
            value = entry.get(key)
            if value is not None and (isinstance(value, str) or not all(isinstance(v, str) for v in value)):
                problems.append(
                    Problem("cobee_django.E006", f"{key} must be a list of strings or None.", "None allows any value.")
                )
        if not isinstance(entry.get("AUTH0_CLAIMS"), bool):
            problems.append(
                Problem("cobee_django.E006", "AUTH0_CLAIMS must be True or False.", "See the settings reference.")
            )
    algorithms = raw.get("ALGORITHMS", DEFAULTS["ALGORITHMS"])
    if isinstance(algorithms, str) or not algorithms or not set(algorithms) <= SUPPORTED_ALGORITHMS:
        problems.append(
            Problem(
                "cobee_django.E008",
                f"COBEE_DJANGO['ALGORITHMS'] must be a non-empty list drawn from {_SUPPORTED}.",
                "Auth0 signs access tokens with RS256; keep the default unless your issuer differs.",
            )
        )
    for key, minimum, integer in (
        ("LEEWAY", 0, False),
        ("MAX_TOKEN_BYTES", 256, True),
        ("JWKS_TIMEOUT", 0.1, False),
        ("JWKS_MAX_BYTES", 1024, True),
        ("JWKS_CACHE_TTL", 1, False),
        ("JWKS_REFRESH_COOLDOWN", 0, False),
        ("UNAVAILABLE_RETRY_AFTER", 1, True),
        ("TOKEN_CACHE_SIZE", 0, True),
    ):
        problems.extend(_check_number(raw, key, minimum=minimum, integer=integer))
    for key in ("METADATA_CLAIM", "REALM", "COMPANY_URL_KWARG", "CORPORATION_URL_KWARG", "ADMIN_SESSION_KEY"):
        value = raw.get(key, DEFAULTS[key])
        if not isinstance(value, str) or not value:
            problems.append(
                Problem(
                    "cobee_django.E006",
                    f"COBEE_DJANGO['{key}'] must be a non-empty string.",
                    f"The default is {DEFAULTS[key]!r}.",
                )
            )
    realm = raw.get("REALM", DEFAULTS["REALM"])
    if isinstance(realm, str) and ('"' in realm or "\\" in realm):
        problems.append(
            Problem(
                "cobee_django.E006",
                "COBEE_DJANGO['REALM'] must not contain quotes or backslashes.",
                "It is sent inside a quoted WWW-Authenticate parameter.",
            )
        )
    for key in ("PROVISION_MEMBERSHIP", "ROW_LEVEL_SECURITY", "THROTTLE_FAIL_OPEN", "TELEMETRY"):
        if not isinstance(raw.get(key, DEFAULTS[key]), bool):
            problems.append(
                Problem(
                    "cobee_django.E006", f"COBEE_DJANGO['{key}'] must be True or False.", "See the settings reference."
                )
            )
    for key in ("JWKS_CACHE_ALIAS", "MEMBERSHIP_RESOLVER", "ADMIN_STAFF_CLAIM"):
        value = raw.get(key, DEFAULTS[key])
        if value is not None and (not isinstance(value, str) or not value):
            problems.append(
                Problem(
                    "cobee_django.E006",
                    f"COBEE_DJANGO['{key}'] must be a non-empty string or None.",
                    "See the settings reference.",
                )
            )
    oidc_issuer = raw.get("ADMIN_OIDC_ISSUER")
    if oidc_issuer is not None and (not isinstance(oidc_issuer, str) or not _is_safe_url(oidc_issuer)):
        problems.append(
            Problem(
                "cobee_django.E003",
                f"ADMIN_OIDC_ISSUER {oidc_issuer!r} is not an https URL.",
                "Use the https issuer of your staff sign-in (e.g. your Auth0 tenant), or None for the first ISSUER.",
            )
        )
    groups = raw.get("ADMIN_OIDC_GROUPS", DEFAULTS["ADMIN_OIDC_GROUPS"])
    if (
        isinstance(groups, str)
        or not isinstance(groups, (list, tuple))
        or not all(isinstance(g, str) and g for g in groups)
    ):
        problems.append(
            Problem(
                "cobee_django.E006",
                "COBEE_DJANGO['ADMIN_OIDC_GROUPS'] must be a list of group names.",
                "The default is [] (no group).",
            )
        )
    token_url = raw.get("OPENAPI_TOKEN_URL")
    if token_url is not None and (not isinstance(token_url, str) or not urlsplit(token_url).hostname):
        problems.append(
            Problem(
                "cobee_django.E006",
                "COBEE_DJANGO['OPENAPI_TOKEN_URL'] must be an absolute URL or None.",
                "Set it to your issuer's token endpoint, e.g. 'https://example.eu.auth0.com/oauth/token'.",
            )
        )
    alias = raw.get("JWKS_CACHE_ALIAS", DEFAULTS["JWKS_CACHE_ALIAS"])
    if isinstance(alias, str) and alias not in getattr(django_settings, "CACHES", {"default": {}}):
        problems.append(
            Problem(
                "cobee_django.E009",
                f"COBEE_DJANGO['JWKS_CACHE_ALIAS'] names the cache {alias!r}, which CACHES does not define.",
                "Name a cache from CACHES, or set it to None to keep key sets in process only.",
            )
        )
    throttle_alias = raw.get("THROTTLE_CACHE_ALIAS", DEFAULTS["THROTTLE_CACHE_ALIAS"])
    if not isinstance(throttle_alias, str) or throttle_alias not in getattr(django_settings, "CACHES", {"default": {}}):
        problems.append(
            Problem(
                "cobee_django.E009",
                f"COBEE_DJANGO['THROTTLE_CACHE_ALIAS'] names the cache {throttle_alias!r}, not one of CACHES.",
                "Name a cache from CACHES (Redis, so that every worker shares the counts).",
            )
        )
    if raw.get("TELEMETRY") is True and find_spec("opentelemetry") is None:
        problems.append(
            Problem(
                "cobee_django.E040",
                "COBEE_DJANGO['TELEMETRY'] is on but the OpenTelemetry API is not installed.",
                "Install the extra 'otel' (opentelemetry-api), or set TELEMETRY to False.",
            )
        )
    return problems


def _build(raw: Mapping[str, Any]) -> Settings:
    def get(key: str) -> Any:
        return raw.get(key, DEFAULTS[key])

    issuers = []
    for entry in _issuer_entries(raw):
        audience = entry["AUDIENCE"]
        issuer = entry["ISSUER"]
        issuers.append(
            IssuerSettings(
                issuer=issuer,
                audiences=frozenset([audience] if isinstance(audience, str) else audience),
                jwks_url=entry["JWKS_URL"] or f"{issuer.rstrip('/')}/.well-known/jwks.json",
                allowed_grant_types=_as_str_set(entry["ALLOWED_GRANT_TYPES"]),
                allowed_clients=_as_str_set(entry["ALLOWED_CLIENTS"]),
                auth0_claims=entry["AUTH0_CLAIMS"],
            )
        )
    return Settings(
        issuers=tuple(issuers),
        algorithms=frozenset(get("ALGORITHMS")),
        leeway=float(get("LEEWAY")),
        max_token_bytes=get("MAX_TOKEN_BYTES"),
        metadata_claim=get("METADATA_CLAIM"),
        realm=get("REALM"),
        jwks_timeout=float(get("JWKS_TIMEOUT")),
        jwks_max_bytes=get("JWKS_MAX_BYTES"),
        jwks_cache_ttl=float(get("JWKS_CACHE_TTL")),
        jwks_refresh_cooldown=float(get("JWKS_REFRESH_COOLDOWN")),
        jwks_cache_alias=get("JWKS_CACHE_ALIAS"),
        unavailable_retry_after=get("UNAVAILABLE_RETRY_AFTER"),
        token_cache_size=get("TOKEN_CACHE_SIZE"),
        provision_membership=get("PROVISION_MEMBERSHIP"),
        membership_resolver=get("MEMBERSHIP_RESOLVER"),
        company_url_kwarg=get("COMPANY_URL_KWARG"),
        corporation_url_kwarg=get("CORPORATION_URL_KWARG"),
        admin_staff_claim=get("ADMIN_STAFF_CLAIM"),
        admin_session_key=get("ADMIN_SESSION_KEY"),
        admin_oidc_issuer=get("ADMIN_OIDC_ISSUER"),
        admin_oidc_groups=tuple(get("ADMIN_OIDC_GROUPS")),
        row_level_security=get("ROW_LEVEL_SECURITY"),
        openapi_token_url=get("OPENAPI_TOKEN_URL"),
        throttle_cache_alias=get("THROTTLE_CACHE_ALIAS"),
        throttle_fail_open=get("THROTTLE_FAIL_OPEN"),
        telemetry=get("TELEMETRY"),
        raw=dict(raw),
    )


_cached: Settings | None = None


def get_settings() -> Settings:
    """The project's validated settings, built on first use and cached until they change."""
    global _cached
    if _cached is None:
        raw = user_settings()
        problems = validate(raw)
        if problems:
            first = problems[0]
            raise ImproperlyConfigured(f"{first.id}: {first.msg} {first.hint}")
        _cached = _build(raw)
    return _cached


#: Callables run after ``COBEE_DJANGO`` changes, so other modules can drop their own caches.
reload_hooks: list[Any] = []


def reload() -> None:
    """Forget the cached settings and everything built from them."""
    global _cached
    _cached = None
    for hook in reload_hooks:
        hook()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTING_NAME, "CACHES"):
        reload()
