"""The ``COBEE_DJANGO`` settings dict: one table of settings, validation and typed, cached access.

Each setting is declared once, in :data:`SETTINGS`: its name, default, documented type, one line of
doc and its check. The defaults (:data:`DEFAULTS`), the typed :class:`Settings` object, the system
check's problems (:func:`validate`) and the settings page (``docs/settings.md``, held to the table by
a test) all come from it.

Everything the app reads from Django settings goes through :func:`get_settings`. The result is built
once, validated, and dropped again when Django's ``setting_changed`` signal fires, so
``override_settings(COBEE_DJANGO=...)`` works in tests; modules that build things from the settings
listen to the same signal (see :func:`is_reloading`). :func:`validate` never raises, whatever the
values, and reports every problem; it is shared with the system checks, so a misconfiguration is
reported the same way at ``manage.py check`` time and raised as ``ImproperlyConfigured`` if code runs anyway.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

__all__: list[str] = []

SETTING_NAME = "COBEE_DJANGO"

#: Algorithms the verifier knows how to pin. Only RSA signatures: the issuer is Auth0.
SUPPORTED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
#: Algorithms a DPoP proof may use (``DPOP_ALGORITHMS`` picks among them): asymmetric only.
SUPPORTED_DPOP_ALGORITHMS = frozenset({"ES256", "ES384", "ES512", "EdDSA", "Ed25519", *SUPPORTED_ALGORITHMS})
DPOP_MODES = ("disabled", "allowed", "required")
#: Cache backends that are not shared between processes (a replay is caught only by the process that saw it first).
_PROCESS_LOCAL_CACHES = frozenset({"django.core.cache.backends.locmem.LocMemCache"})
#: Cache backends that remember nothing (``add`` always succeeds: every replay would pass).
_FORGETFUL_CACHES = frozenset({"django.core.cache.backends.dummy.DummyCache"})

LOOPBACK_HOSTS = frozenset({"localhost"})
_SUPPORTED = ", ".join(sorted(SUPPORTED_ALGORITHMS))

E_NO_ISSUER = "cobee_django.E001"
E_NO_AUDIENCE = "cobee_django.E002"
E_ISSUER_URL = "cobee_django.E003"
E_JWKS_URL = "cobee_django.E004"
E_UNKNOWN_KEY = "cobee_django.E005"
E_VALUE = "cobee_django.E006"
E_BOTH_FORMS = "cobee_django.E007"
E_ALGORITHMS = "cobee_django.E008"
E_CACHE_ALIAS = "cobee_django.E009"
E_TELEMETRY = "cobee_django.E050"
E_DPOP = "cobee_django.E070"
E_DPOP_REPLAY_CACHE = "cobee_django.E071"
W_DPOP_REPLAY_CACHE = "cobee_django.W071"
E_MTLS = "cobee_django.E072"
E_TENANT_CLAIMS = "cobee_django.E073"


class Problem(NamedTuple):
    """One misconfiguration, reported by a system check with this id."""

    id: str
    msg: str
    hint: str


# --- the one URL rule ----------------------------------------------------------------------------------


def is_loopback_url(url: str) -> bool:
    """True when ``url`` points at this machine (127.0.0.0/8, ::1 or localhost)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_secure_url(url: object) -> bool:
    """The one rule for issuer and key-set URLs, shared by the checks and the key-set fetcher.

    https with a host (the scheme in any case, as RFC 3986 allows), or plain http to this machine:
    keys fetched over plain http from another host can be swapped by anyone on the path.
    """
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an invalid IPv6 literal
        return False
    if not host or url != url.strip() or any(ord(char) < 0x21 for char in url):
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback_url(url))


# --- value checks: each answers the problems of one value (never raises) ------------------------------

Check = Callable[[str, Any], list[Problem]]


def _problem(key: str, must: str, hint: str, id: str = E_VALUE) -> list[Problem]:
    return [Problem(id, f"COBEE_DJANGO['{key}'] must be {must}.", hint)]


def _number(minimum: float, *, integer: bool) -> Check:
    def check(key: str, value: Any) -> list[Problem]:
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
            return _problem(key, "an integer" if integer else "a number", f"Set it to a number of at least {minimum}.")
        if value < minimum:
            return _problem(key, f"at least {minimum}", f"The default is {DEFAULTS[key]}.")
        return []

    return check


def _text(*, optional: bool = False, quotable: bool = False) -> Check:
    def check(key: str, value: Any) -> list[Problem]:
        if value is None and optional:
            return []
        if not isinstance(value, str) or not value:
            must = "a non-empty string or None" if optional else "a non-empty string"
            return _problem(key, must, f"The default is {DEFAULTS[key]!r}.")
        if quotable and ('"' in value or "\\" in value):
            return _problem(
                key, "free of quotes and backslashes", "It is sent inside a quoted WWW-Authenticate parameter."
            )
        return []

    return check


def _boolean(key: str, value: Any) -> list[Problem]:
    return [] if isinstance(value, bool) else _problem(key, "True or False", f"The default is {DEFAULTS[key]}.")


_COLLECTIONS = (list, tuple, set, frozenset)


def _string_list(*, optional: bool, non_empty_items: bool = True) -> Check:
    def check(key: str, value: Any) -> list[Problem]:
        if value is None and optional:
            return []
        if not isinstance(value, _COLLECTIONS) or not all(
            isinstance(item, str) and (item or not non_empty_items) for item in value
        ):
            must = "a list of strings or None" if optional else "a list of strings"
            return _problem(key, must, "None allows any value." if optional else f"The default is {DEFAULTS[key]}.")
        return []

    return check


def _algorithms(key: str, value: Any) -> list[Problem]:
    strings = isinstance(value, _COLLECTIONS) and value and all(isinstance(item, str) for item in value)
    if strings and set(value) <= SUPPORTED_ALGORITHMS:
        return []
    return _problem(
        key,
        f"a non-empty list drawn from {_SUPPORTED}",
        "Auth0 signs access tokens with RS256; keep the default unless your issuer differs.",
        E_ALGORITHMS,
    )


def _issuer_url(key: str, value: Any) -> list[Problem]:
    if value is None:
        return []  # required-ness is checked per issuer (E001)
    if not is_secure_url(value):
        return [
            Problem(
                E_ISSUER_URL,
                f"The issuer {value!r} is not an https URL.",
                "Use the https issuer URL; plain http is accepted only for 127.0.0.1, ::1 and localhost.",
            )
        ]
    return []


def _audience(key: str, value: Any) -> list[Problem]:
    if value is None:
        return []  # required-ness is checked per issuer (E002)
    values = [value] if isinstance(value, str) else value
    if isinstance(values, _COLLECTIONS) and values and all(isinstance(item, str) and item for item in values):
        return []
    return [
        Problem(
            E_NO_AUDIENCE,
            f"COBEE_DJANGO['{key}'] must be a string or a non-empty list of strings.",
            "Set AUDIENCE to your API's identifier in Auth0 (a string, or a list of strings).",
        )
    ]


def _jwks_url(key: str, value: Any) -> list[Problem]:
    if value is None or is_secure_url(value):
        return []
    return [
        Problem(
            E_JWKS_URL,
            f"JWKS_URL {value!r} is not an https URL.",
            "Keys must come over https; plain http is accepted only for 127.0.0.1, ::1 and localhost.",
        )
    ]


def _issuers(key: str, value: Any) -> list[Problem]:
    if value is None or (isinstance(value, (list, tuple)) and all(isinstance(entry, Mapping) for entry in value)):
        return []  # each entry is checked like the top-level keys
    return _problem(key, "a list of dicts or None", "Each entry holds ISSUER, AUDIENCE and optionally JWKS_URL, ...")


def _cache_alias(*, optional: bool, hint: str) -> Check:
    """A key naming one of ``CACHES`` (or ``None`` when ``optional``)."""

    def check(key: str, value: Any) -> list[Problem]:
        problems = _text(optional=optional)(key, value)
        caches = getattr(django_settings, "CACHES", None)
        if not problems and value is not None and isinstance(caches, Mapping) and value not in caches:
            problems.append(
                Problem(
                    E_CACHE_ALIAS,
                    f"COBEE_DJANGO['{key}'] names the cache {value!r}, which CACHES does not define.",
                    hint,
                )
            )
        return problems

    return check


def _dpop_mode(key: str, value: Any) -> list[Problem]:
    if value in DPOP_MODES and isinstance(value, str):
        return []
    return _problem(
        key,
        'one of "disabled", "allowed", "required"',
        '"allowed" accepts Bearer and DPoP tokens; "required" only DPoP-bound tokens.',
        E_DPOP,
    )


def _dpop_algorithms(key: str, value: Any) -> list[Problem]:
    strings = isinstance(value, _COLLECTIONS) and value and all(isinstance(item, str) for item in value)
    if strings and set(value) <= SUPPORTED_DPOP_ALGORITHMS:
        return []
    return _problem(
        key,
        f"a non-empty list drawn from {', '.join(sorted(SUPPORTED_DPOP_ALGORITHMS))}",
        "Proofs are signed with the client's own key pair; ES256 is what most clients use. "
        "Symmetric algorithms and 'none' are never accepted.",
        E_DPOP,
    )


def _optional_number(minimum: float) -> Check:
    def check(key: str, value: Any) -> list[Problem]:
        if value is None:
            return []
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not number or value < minimum:
            return _problem(key, f"None or a number of seconds of at least {minimum}", "None turns the feature off.")
        return []

    return check


_replay_cache = _cache_alias(
    optional=False, hint="Name a cache from CACHES that every process shares (Redis, Memcached, database)."
)


def _replay_cache_sharing(raw: Mapping[str, Any]) -> list[Problem]:
    """E071/W071: with DPoP on, the cache of seen proofs must remember, and be shared between processes."""
    if raw.get("DPOP_MODE", DEFAULTS["DPOP_MODE"]) not in ("allowed", "required"):
        return []
    key = "DPOP_REPLAY_CACHE_ALIAS"
    alias = raw.get(key, DEFAULTS[key])
    caches = getattr(django_settings, "CACHES", None)
    if not isinstance(caches, Mapping) or not isinstance(alias, str) or not isinstance(caches.get(alias), Mapping):
        return []  # reported by the alias check (E009)
    backend = caches[alias].get("BACKEND")
    if backend in _FORGETFUL_CACHES:
        return [
            Problem(
                E_DPOP_REPLAY_CACHE,
                f"COBEE_DJANGO['{key}'] names the cache {alias!r}, which remembers nothing: every replayed "
                "DPoP proof would be accepted.",
                "Name a cache that every process shares (Redis, Memcached, database).",
            )
        ]
    if backend in _PROCESS_LOCAL_CACHES:
        return [
            Problem(
                W_DPOP_REPLAY_CACHE,
                f"COBEE_DJANGO['{key}'] names the cache {alias!r}, which each process keeps to itself: a proof "
                "replayed to another worker or host is accepted there.",
                "Name a cache that every process shares (Redis, Memcached, database); fine for one process.",
            )
        ]
    return []


def is_warning(problem: Problem) -> bool:
    """Whether ``problem`` is a warning (``...W...`` id): reported by the checks, never raised."""
    return ".W" in problem.id


def _trusted_proxies(key: str, value: Any) -> list[Problem]:
    if isinstance(value, _COLLECTIONS) and all(isinstance(item, str) for item in value):
        try:
            for item in value:
                ipaddress.ip_network(item, strict=False)
        except ValueError:
            pass
        else:
            return []
    return _problem(
        key,
        "a list of IP addresses or networks",
        "The addresses of the TLS-terminating proxies that forward client certificates, e.g. ['10.0.0.5'].",
        E_MTLS,
    )


def _cert_header(key: str, value: Any) -> list[Problem]:
    if value is None:
        return []
    if (
        isinstance(value, str)
        and value.startswith("HTTP_")
        and value[5:].replace("_", "").isalnum()
        and value.upper() == value
        and value != "HTTP_AUTHORIZATION"
    ):
        return []
    return _problem(
        key,
        "None or a request.META key such as 'HTTP_X_SSL_CLIENT_CERT'",
        "The header your TLS proxy sets to the URL-encoded PEM client certificate, as Django names it "
        "(HTTP_ + the header name upper-cased, dashes made underscores).",
        E_MTLS,
    )


def _claim_path(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(item, str) and item for item in value)


def _tenant_claims(key: str, value: Any) -> list[Problem]:
    if value in ("metadata", "org_id") and isinstance(value, str):
        return []
    if (
        isinstance(value, Mapping)
        and set(value) <= {"company", "corporation"}
        and _claim_path(value.get("company"))
        and (value.get("corporation") is None or _claim_path(value.get("corporation")))
    ):
        return []
    return _problem(
        key,
        '"metadata", "org_id", or {"company": [claim, member, ...], "corporation": [...] or None}',
        "A path is the claim's name, then the members to follow inside it, e.g. "
        '{"company": ["https://example.com/tenant", "company"]}.',
        E_TENANT_CLAIMS,
    )


def _organization_resolver_needed(raw: Mapping[str, Any]) -> list[Problem]:
    """E073: ``org_id`` names an Auth0 organization, not a company: a resolver must say which."""
    if raw.get("TENANT_CLAIMS") == "org_id" and not raw.get("ORGANIZATION_RESOLVER"):
        return [
            Problem(
                E_TENANT_CLAIMS,
                "COBEE_DJANGO['TENANT_CLAIMS'] is 'org_id' but ORGANIZATION_RESOLVER is not set.",
                "Auth0 generates organization ids (org_...); set ORGANIZATION_RESOLVER to the dotted path of "
                "a function from an organization id to its company id (a UUID), or None when unknown.",
            )
        ]
    return []


def _telemetry(key: str, value: Any) -> list[Problem]:
    problems = _boolean(key, value)
    if not problems and value is True and find_spec("opentelemetry") is None:
        problems.append(
            Problem(
                E_TELEMETRY,
                "COBEE_DJANGO['TELEMETRY'] is on but the OpenTelemetry API is not installed.",
                "Install the extra 'otel' (opentelemetry-api), or set TELEMETRY to False.",
            )
        )
    return problems


def _oidc_issuer(key: str, value: Any) -> list[Problem]:
    if value is None or is_secure_url(value):
        return []
    return [
        Problem(
            E_ISSUER_URL,
            f"ADMIN_OIDC_ISSUER {value!r} is not an https URL.",
            "Use the https issuer of your staff sign-in (e.g. your Auth0 tenant), or None for the first ISSUER.",
        )
    ]


def _absolute_url(key: str, value: Any) -> list[Problem]:
    if value is None:
        return []
    try:
        absolute = isinstance(value, str) and bool(urlsplit(value).hostname)
    except ValueError:
        absolute = False
    if absolute:
        return []
    return _problem(
        key,
        "an absolute URL or None",
        "Set it to your issuer's token endpoint, e.g. 'https://example.eu.auth0.com/oauth/token'.",
    )


# --- the table -----------------------------------------------------------------------------------------


def _same(value: Any) -> Any:
    return value


def _str_set(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset([value] if isinstance(value, str) else value)


@dataclass(frozen=True)
class Setting:
    """One key of ``COBEE_DJANGO``: everything the code and the docs say about it."""

    name: str
    default: Any
    type: str
    doc: str
    check: Check
    #: Builds the typed value of :class:`Settings` from a checked raw value.
    convert: Callable[[Any], Any] = _same
    #: Also a key of each ``ISSUERS`` entry, which falls back to the top-level value.
    per_issuer: bool = False
    #: The section of the settings page.
    section: str = ""

    @property
    def attribute(self) -> str:
        """Its attribute on :class:`Settings` (or :class:`IssuerSettings`)."""
        return self.name.lower()


def _settings(section: str, *entries: Setting) -> list[Setting]:
    return [Setting(**{**entry.__dict__, "section": section}) for entry in entries]


REQUIRED: Any = None

#: Every setting, once. The settings page (docs/settings.md) is held to this table by a test.
SETTINGS: tuple[Setting, ...] = (
    *_settings(
        "Issuers",
        Setting("ISSUER", REQUIRED, "`str`", "The exact `iss` of accepted tokens.", _issuer_url, per_issuer=True),
        Setting("AUDIENCE", REQUIRED, "`str` or `list[str]`", "The API identifier(s).", _audience, per_issuer=True),
        Setting("JWKS_URL", None, "`str` or `None`", "Where the issuer's keys are.", _jwks_url, per_issuer=True),
        Setting("ISSUERS", None, "`list[dict]` or `None`", "Several trusted issuers.", _issuers),
    ),
    *_settings(
        "Token rules",
        Setting("ALGORITHMS", ["RS256"], "`list[str]`", "Signature algorithms accepted.", _algorithms, frozenset),
        Setting("LEEWAY", 30, "`int`/`float` seconds", "Clock skew tolerated.", _number(0, integer=False), float),
        Setting("MAX_TOKEN_BYTES", 16 * 1024, "`int`", "Longer tokens are refused.", _number(256, integer=True)),
        Setting(
            "ALLOWED_GRANT_TYPES",
            ["client-credentials"],
            "`list[str]` or `None`",
            "Accepted `gty` values.",
            _string_list(optional=True, non_empty_items=False),
            _str_set,
            per_issuer=True,
        ),
        Setting(
            "ALLOWED_CLIENTS",
            None,
            "`list[str]` or `None`",
            "Accepted client ids.",
            _string_list(optional=True, non_empty_items=False),
            _str_set,
            per_issuer=True,
        ),
        Setting("AUTH0_CLAIMS", True, "`bool`", "Auth0's M2M claim rules.", _boolean, per_issuer=True),
        Setting("METADATA_CLAIM", "https://auth.cobee.io/metadata", "`str`", "The tenant claim.", _text()),
        Setting(
            "TENANT_CLAIMS",
            "metadata",
            "`str` or `dict`",
            "Where company and corporation come from.",
            _tenant_claims,
            lambda value: value if isinstance(value, str) else {k: tuple(v) if v else None for k, v in value.items()},
        ),
        Setting(
            "ORGANIZATION_RESOLVER",
            None,
            "dotted path or `None`",
            "Auth0 organization to company.",
            _text(optional=True),
        ),
        Setting("REALM", "api", "`str`", "The realm of the Bearer challenge.", _text(quotable=True)),
    ),
    *_settings(
        "Sender-constrained tokens",
        Setting("DPOP_MODE", "disabled", "`str`", "`disabled`, `allowed` or `required`.", _dpop_mode),
        Setting(
            "DPOP_ALGORITHMS",
            ["ES256", "PS256", "RS256"],
            "`list[str]`",
            "Algorithms of DPoP proofs.",
            _dpop_algorithms,
            frozenset,
        ),
        Setting("DPOP_PROOF_MAX_AGE", 60, "seconds", "Oldest proof `iat` accepted.", _number(1, integer=False), float),
        Setting(
            "DPOP_NONCE_LIFETIME",
            None,
            "seconds or `None`",
            "Server nonce rotation period.",
            _optional_number(10),
            lambda value: None if value is None else float(value),
        ),
        Setting("DPOP_REPLAY_CACHE_ALIAS", "default", "`str`", "The cache of seen proofs.", _replay_cache),
        Setting("DPOP_REPLAY_FAIL_OPEN", False, "`bool`", "Admit proofs when that cache is down.", _boolean),
        Setting(
            "DPOP_REQUIRED_CLIENTS",
            [],
            "`list[str]`",
            "Clients that must use DPoP.",
            _string_list(optional=False),
            frozenset,
        ),
        Setting("MTLS_CLIENT_CERT_HEADER", None, "`str` or `None`", "The proxy's client-cert header.", _cert_header),
        Setting(
            "MTLS_TRUSTED_PROXIES",
            [],
            "`list[str]`",
            "Proxies trusted with that header.",
            _trusted_proxies,
            lambda value: tuple(ipaddress.ip_network(item, strict=False) for item in value),
        ),
    ),
    *_settings(
        "Key sets",
        Setting("JWKS_TIMEOUT", 5.0, "seconds", "Timeout of one key-set fetch.", _number(0.1, integer=False), float),
        Setting("JWKS_MAX_BYTES", 1024 * 1024, "`int`", "Larger key sets are refused.", _number(1024, integer=True)),
        Setting("JWKS_CACHE_TTL", 600, "seconds", "Key-set refresh age.", _number(1, integer=False), float),
        Setting(
            "JWKS_REFRESH_COOLDOWN", 30, "seconds", "Unknown-kid refresh period.", _number(0, integer=False), float
        ),
        Setting(
            "JWKS_CACHE_ALIAS",
            "default",
            "`str` or `None`",
            "The shared key-set cache.",
            _cache_alias(
                optional=True, hint="Name a cache from CACHES, or set it to None to keep key sets in process only."
            ),
        ),
        Setting("UNAVAILABLE_RETRY_AFTER", 30, "`int` seconds", "Retry-After of the 503.", _number(1, integer=True)),
        Setting("TOKEN_CACHE_SIZE", 10_000, "`int`", "Verified tokens kept in process.", _number(0, integer=True)),
    ),
    *_settings(
        "Tenancy",
        Setting("PROVISION_MEMBERSHIP", False, "`bool`", "Tokens record companies and corporation links.", _boolean),
        Setting("MEMBERSHIP_RESOLVER", None, "dotted path or `None`", "Corporation directory.", _text(optional=True)),
        Setting("COMPANY_URL_KWARG", "companyId", "`str`", "URL keyword of the company id.", _text()),
        Setting("CORPORATION_URL_KWARG", "corporationId", "`str`", "URL keyword of the corporation id.", _text()),
    ),
    *_settings(
        "Admin",
        Setting(
            "ADMIN_STAFF_CLAIM",
            "https://auth.cobee.io/staff",
            "`str` or `None`",
            "Claim marking Cobee-wide staff.",
            _text(optional=True),
        ),
        Setting(
            "ADMIN_SESSION_KEY", "cobee_django_active_tenant", "`str`", "Session key of the active company.", _text()
        ),
        Setting("ADMIN_OIDC_ISSUER", None, "`str` or `None`", "The `iss` of staff ID tokens.", _oidc_issuer),
        Setting(
            "ADMIN_OIDC_GROUPS", [], "`list[str]`", "Groups of OIDC staff users.", _string_list(optional=False), tuple
        ),
    ),
    *_settings(
        "OpenAPI",
        Setting("OPENAPI_TOKEN_URL", None, "`str` or `None`", "The documented token URL.", _absolute_url),
    ),
    *_settings(
        "Database",
        Setting("ROW_LEVEL_SECURITY", False, "`bool`", "PostgreSQL row-level security.", _boolean),
        Setting(
            "CONNECT_TIMEOUT",
            5,
            "`int` seconds",
            "Wait for a database connection, and Citus's to a worker.",
            _number(1, integer=True),
        ),
    ),
    *_settings(
        "Throttling and telemetry",
        Setting(
            "THROTTLE_CACHE_ALIAS",
            "default",
            "`str`",
            "The cache that holds rate counts.",
            _cache_alias(
                optional=False, hint="Name a cache from CACHES (Redis, so that every worker shares the counts)."
            ),
        ),
        Setting("THROTTLE_FAIL_OPEN", False, "`bool`", "Admit requests when that cache is down.", _boolean),
        Setting("TELEMETRY", False, "`bool`", "OpenTelemetry spans and metrics.", _telemetry),
    ),
)

_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}

#: The default of each key (``None`` for the required ``ISSUER`` and ``AUDIENCE``).
DEFAULTS: dict[str, Any] = {setting.name: setting.default for setting in SETTINGS}

#: Keys an entry of ``ISSUERS`` may hold; each falls back to the top-level key of the same name.
ISSUER_KEYS = frozenset(setting.name for setting in SETTINGS if setting.per_issuer)


# --- the typed settings --------------------------------------------------------------------------------


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
    """The validated, typed form of ``COBEE_DJANGO``: one attribute per setting of :data:`SETTINGS`
    (lower-cased), the issuers' keys gathered in ``issuers``."""

    issuers: tuple[IssuerSettings, ...]
    algorithms: frozenset[str]
    leeway: float
    max_token_bytes: int
    metadata_claim: str
    tenant_claims: Any
    organization_resolver: str | None
    realm: str
    jwks_timeout: float
    jwks_max_bytes: int
    jwks_cache_ttl: float
    jwks_refresh_cooldown: float
    jwks_cache_alias: str | None
    unavailable_retry_after: int
    token_cache_size: int
    dpop_mode: Any
    dpop_algorithms: frozenset[str]
    dpop_proof_max_age: float
    dpop_nonce_lifetime: float | None
    dpop_replay_cache_alias: str
    dpop_replay_fail_open: bool
    dpop_required_clients: frozenset[str]
    mtls_client_cert_header: str | None
    mtls_trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    provision_membership: bool
    membership_resolver: str | None
    company_url_kwarg: str
    corporation_url_kwarg: str
    admin_staff_claim: str | None
    admin_session_key: str
    admin_oidc_issuer: str | None
    admin_oidc_groups: tuple[str, ...]
    row_level_security: bool
    connect_timeout: int
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
    """The raw ``COBEE_DJANGO`` dict of the project (empty when unset or not a dict)."""
    value = getattr(django_settings, SETTING_NAME, None)
    return dict(value) if isinstance(value, Mapping) else {}


def raw_setting() -> Any:
    """``COBEE_DJANGO`` exactly as the project set it (``{}`` when unset)."""
    return getattr(django_settings, SETTING_NAME, {})


# --- validation ----------------------------------------------------------------------------------------


def _names(keys: Iterable[Any]) -> str:
    return ", ".join(sorted(str(key) for key in keys))


def _issuer_entries(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each issuer entry with the top-level values filled in (entries that are not dicts are left out)."""
    entries = raw.get("ISSUERS")
    if entries is None:
        entries = [{"ISSUER": raw["ISSUER"]}] if raw.get("ISSUER") is not None else []
    if not isinstance(entries, (list, tuple)):
        return []
    return [
        {**{key: raw.get(key, DEFAULTS[key]) for key in ISSUER_KEYS}, **entry}
        for entry in entries
        if isinstance(entry, Mapping)
    ]


def _check_issuer(entry: Mapping[str, Any], where: str) -> list[Problem]:
    problems: list[Problem] = []
    if entry.get("ISSUER") in (None, ""):  # another type is reported as not an https URL (E003)
        problems.append(
            Problem(
                E_NO_ISSUER, f"{where}has no ISSUER.", "Every issuer needs its ISSUER (the exact 'iss' of its tokens)."
            )
        )
    if entry.get("AUDIENCE") is None:
        problems.append(
            Problem(
                E_NO_AUDIENCE,
                f"{where}has no AUDIENCE.",
                "Set AUDIENCE to your API's identifier in Auth0 (a string, or a list of strings).",
            )
        )
    return problems


def validate(raw: Any) -> list[Problem]:
    """Every problem of a ``COBEE_DJANGO`` value; an empty list means it is usable. Never raises."""
    if not isinstance(raw, Mapping):
        return [Problem(E_VALUE, "COBEE_DJANGO must be a dict.", "See the settings reference.")]
    problems: list[Problem] = []
    unknown = [key for key in raw if key not in _BY_NAME]
    if unknown:
        problems.append(
            Problem(
                E_UNKNOWN_KEY,
                f"Unknown COBEE_DJANGO keys: {_names(unknown)}.",
                "Check the spelling against the settings reference; unknown keys are never read.",
            )
        )
    if raw.get("ISSUERS") is not None and (raw.get("ISSUER") is not None or raw.get("JWKS_URL") is not None):
        problems.append(
            Problem(
                E_BOTH_FORMS,
                "COBEE_DJANGO sets both ISSUERS and ISSUER/JWKS_URL.",
                "Use ISSUER, AUDIENCE and JWKS_URL for one issuer, or list every issuer in ISSUERS.",
            )
        )
    for setting in SETTINGS:
        problems.extend(setting.check(setting.name, raw.get(setting.name, setting.default)))
    entries = raw.get("ISSUERS")
    if isinstance(entries, (list, tuple)):
        for number, entry in enumerate(entries, 1):
            if not isinstance(entry, Mapping):
                continue  # reported by the ISSUERS check
            where = f"ISSUERS entry {number}: "
            extra = [key for key in entry if key not in ISSUER_KEYS]
            if extra:
                problems.append(
                    Problem(
                        E_UNKNOWN_KEY,
                        f"Unknown keys in {where[:-2]}: {_names(extra)}.",
                        f"An entry may hold {_names(ISSUER_KEYS)}.",
                    )
                )
            for key in sorted(ISSUER_KEYS & {key for key in entry if isinstance(key, str)}):
                problems.extend(
                    problem._replace(msg=where + problem.msg) for problem in _BY_NAME[key].check(key, entry[key])
                )
    problems.extend(_replay_cache_sharing(raw))
    problems.extend(_organization_resolver_needed(raw))
    issuers = _issuer_entries(raw)
    if not issuers and (entries is None or isinstance(entries, (list, tuple))):
        problems.append(
            Problem(
                E_NO_ISSUER,
                "COBEE_DJANGO has no ISSUER.",
                "Set COBEE_DJANGO['ISSUER'] to your Auth0 tenant's issuer, e.g. 'https://example.eu.auth0.com/'.",
            )
        )
    for number, entry in enumerate(issuers, 1):
        problems.extend(_check_issuer(entry, f"ISSUERS entry {number} " if entries is not None else "The issuer "))
    return problems


# --- building and caching ------------------------------------------------------------------------------


def _build(raw: Mapping[str, Any]) -> Settings:
    issuers = []
    for entry in _issuer_entries(raw):
        issuer = entry["ISSUER"]
        issuers.append(
            IssuerSettings(
                issuer=issuer,
                audiences=frozenset(_str_set(entry["AUDIENCE"]) or ()),
                jwks_url=entry["JWKS_URL"] or f"{issuer.rstrip('/')}/.well-known/jwks.json",
                allowed_grant_types=_str_set(entry["ALLOWED_GRANT_TYPES"]),
                allowed_clients=_str_set(entry["ALLOWED_CLIENTS"]),
                auth0_claims=entry["AUTH0_CLAIMS"],
            )
        )
    values = {
        setting.attribute: setting.convert(raw.get(setting.name, setting.default))
        for setting in SETTINGS
        if not setting.per_issuer and setting.name != "ISSUERS"
    }
    return Settings(issuers=tuple(issuers), raw=dict(raw), **values)


_cached: Settings | None = None


def get_settings() -> Settings:
    """The project's validated settings, built on first use and cached until they change.

    Raises ``ImproperlyConfigured`` naming every problem (the system checks report the same ones).
    """
    global _cached
    if _cached is None:
        raw = raw_setting()
        problems = [problem for problem in validate(raw) if not is_warning(problem)]
        if problems:
            raise ImproperlyConfigured(" ".join(f"{p.id}: {p.msg} {p.hint}" for p in problems))
        _cached = _build(raw)
    return _cached


#: Deprecated: callables run after ``COBEE_DJANGO`` changes. Receive Django's ``setting_changed``
#: signal instead and test the setting with :func:`is_reloading`.
reload_hooks: list[Callable[[], object]] = []


def is_reloading(setting: str) -> bool:
    """Whether a change of the Django setting ``setting`` changes what :func:`get_settings` builds."""
    return setting in (SETTING_NAME, "CACHES")


def reload() -> None:
    """Forget the cached settings and everything built from them (as a change of ``COBEE_DJANGO`` does)."""
    setting_changed.send(sender=Settings, setting=SETTING_NAME, value=raw_setting(), enter=False)


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    global _cached
    if is_reloading(setting):
        _cached = None
        for hook in reload_hooks:
            hook()
