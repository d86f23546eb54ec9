"""System checks: a broken ``COBEE_DJANGO`` or middleware order fails ``manage.py check``.

Every check id is listed in the docs (``docs/checks.md``); ids are stable and never reused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db.models import Model

from .conf import is_warning, raw_setting, validate
from .throttling import RATE_FORMAT, _parse_throttle_rate

__all__: list[str] = []

E_THROTTLE_RATE = "cobee_django.E051"
TENANT_MIDDLEWARE = "cobee_django.middleware.TenantMiddleware"
JWT_AUTHENTICATION = "cobee_django.authentication.JWTAuthentication"
#: The tenant of an admin request comes from the session's user, so these must run first.
MIDDLEWARE_BEFORE_TENANT = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
)


@register(Tags.security)
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report every problem of ``COBEE_DJANGO`` (ids E001 to E009, E070 to E073, W071)."""
    return [(Warning if is_warning(p) else Error)(p.msg, hint=p.hint, id=p.id) for p in validate(raw_setting())]


@register(Tags.security)
def check_throttle_rates(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report every malformed entry of ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (E051)."""
    rest_framework = getattr(settings, "REST_FRAMEWORK", None)
    rates = rest_framework.get("DEFAULT_THROTTLE_RATES", {}) if isinstance(rest_framework, dict) else {}
    return throttle_rate_errors(rates)


def throttle_rate_errors(rates: object) -> list[CheckMessage]:
    """E051 for each rate the throttles could not read (a 500, or a surprise, at request time)."""
    hint = f"In REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'], {RATE_FORMAT}."
    if not isinstance(rates, dict):
        return [Error("DEFAULT_THROTTLE_RATES is not a dict of scope names to rates.", hint=hint, id=E_THROTTLE_RATE)]
    errors: list[CheckMessage] = []
    for scope, rate in rates.items():
        try:
            _parse_throttle_rate(rate)
        except ValueError:
            errors.append(
                Error(f"The throttle rate of scope {scope!r} is malformed: {rate!r}.", hint=hint, id=E_THROTTLE_RATE)
            )
    return errors


@register(Tags.security)
def check_middleware(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """The tenant middleware is installed, after the session and authentication middleware."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if TENANT_MIDDLEWARE not in middleware:
        return [
            Error(
                f"{TENANT_MIDDLEWARE} is not in MIDDLEWARE.",
                hint="Without it no tenant is bound and every query on a tenant model fails. "
                "Add it after AuthenticationMiddleware.",
                id="cobee_django.E010",
            )
        ]
    position = middleware.index(TENANT_MIDDLEWARE)
    errors: list[CheckMessage] = []
    for name in MIDDLEWARE_BEFORE_TENANT:
        if name in middleware and middleware.index(name) > position:
            errors.append(
                Error(
                    f"{TENANT_MIDDLEWARE} must come after {name}.",
                    hint=f"Move {TENANT_MIDDLEWARE} below {name} in MIDDLEWARE.",
                    id="cobee_django.E011",
                )
            )
    return errors


@register(Tags.security)
def check_authentication_classes(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """``JWTAuthentication`` is a default DRF authentication class, before any that answers 403 (W002, W003)."""
    from rest_framework.settings import api_settings

    try:
        classes = list(api_settings.DEFAULT_AUTHENTICATION_CLASSES)
    except ImportError:
        return []  # DRF reports a class it cannot import itself
    return authentication_class_warnings(classes)


def authentication_class_warnings(classes: Sequence[Any]) -> list[CheckMessage]:
    """W002 when no class of ``classes`` is ``JWTAuthentication``; W003 when one that answers 403 comes first."""
    from rest_framework.authentication import BaseAuthentication

    from .authentication import JWTAuthentication

    position = next((i for i, cls in enumerate(classes) if _is_subclass(cls, JWTAuthentication)), None)
    if position is None:
        return [
            Warning(
                f"{JWT_AUTHENTICATION} is not in REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'].",
                hint=f"Add {JWT_AUTHENTICATION!r} first in the list, or set authentication_classes on every "
                "API view; without it API clients' tokens are never read.",
                id="cobee_django.W002",
            )
        ]
    # DRF asks the first class for the challenge of a request without credentials: a class without one
    # (SessionAuthentication) turns the 401 with the Bearer challenge into a 403 clients cannot act on.
    silent = [
        cls
        for cls in classes[:position]
        if isinstance(cls, type) and getattr(cls, "authenticate_header", None) is BaseAuthentication.authenticate_header
    ]
    if not silent:
        return []
    names = ", ".join(f"{cls.__module__}.{cls.__qualname__}" for cls in silent)
    return [
        Warning(
            f"{JWT_AUTHENTICATION} comes after {names} in DEFAULT_AUTHENTICATION_CLASSES: requests without "
            "credentials get a 403 instead of a 401 with the Bearer challenge.",
            hint=f"Move {JWT_AUTHENTICATION!r} to the top of DEFAULT_AUTHENTICATION_CLASSES.",
            id="cobee_django.W003",
        )
    ]


def _is_subclass(value: Any, parent: type) -> bool:
    return isinstance(value, type) and issubclass(value, parent)


@register(Tags.templates)
def check_admin_templates(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """The admin's company switcher is drawn by templates that must win over the admin's own."""
    return admin_template_warnings(list(getattr(settings, "INSTALLED_APPS", None) or []))


def admin_template_warnings(apps: Sequence[str]) -> list[CheckMessage]:
    """W001 when ``apps`` lists ``cobee_django`` after ``django.contrib.admin``."""
    names = [name.split(".apps.")[0] for name in apps]
    if "django.contrib.admin" not in names or "cobee_django" not in names:
        return []
    if names.index("cobee_django") < names.index("django.contrib.admin"):
        return []
    return [
        Warning(
            "'cobee_django' comes after 'django.contrib.admin' in INSTALLED_APPS: the admin will not "
            "show the company switcher.",
            hint="Move 'cobee_django' above 'django.contrib.admin', or add {% load cobee_admin %}"
            "{% tenant_switcher %} to your own admin/base_site.html.",
            id="cobee_django.W001",
        )
    ]


@register(Tags.models, Tags.security)
def check_tenant_managers(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Name each manager of a tenant model that was not declared scoped (id W004)."""
    from django.apps import apps

    return tenant_manager_warnings(apps.get_models())


def tenant_manager_warnings(models: Iterable[type[Model]]) -> list[CheckMessage]:
    """W004 for each manager (or base manager) of a tenant model declared without ``TenantQuerySet``s.

    Such a manager is scoped at run time anyway (:mod:`cobee_django._django`): the warning is for
    code that meant it to read every company's rows, which it no longer does.
    """
    from ._django import declared_queryset
    from .company_field import is_tenant_model
    from .managers import TenantQuery, TenantQuerySet

    def declared_scoped(manager: Any) -> bool:
        queryset = declared_queryset(manager)
        return isinstance(queryset, TenantQuerySet) and isinstance(queryset.query, TenantQuery)

    hint = (
        "It reads only the bound tenant's rows: cobee_django scopes every manager of a tenant model at run "
        "time. Derive it from cobee_django.managers.TenantManager (or TenantManager.from_queryset(...) with a "
        "TenantQuerySet subclass) to say so, and read every company's rows inside cobee_django.state.unscoped()."
    )
    warnings: list[CheckMessage] = []
    for model in models:
        if not is_tenant_model(model):
            continue
        for manager in model._meta.managers:
            if not declared_scoped(manager):
                warnings.append(
                    Warning(
                        f"{model._meta.label}.{manager.name} is not declared scoped; it is scoped to the tenant "
                        "at run time.",
                        hint=hint,
                        obj=model,
                        id="cobee_django.W004",
                    )
                )
        base = model._base_manager
        if any(base is manager for manager in model._meta.managers):
            continue  # Meta.base_manager_name: named above when it is not declared scoped
        if not declared_scoped(base):
            warnings.append(
                Warning(
                    f"The base manager of {model._meta.label} is not declared scoped; it is scoped to the tenant "
                    "at run time.",
                    hint=hint,
                    obj=model,
                    id="cobee_django.W004",
                )
            )
    return warnings


# --- deploy checks (``manage.py check --deploy``) ------------------------------------------------------

W_ISSUER_SLASH = "cobee_django.W080"
W_OIDC_INSECURE = "cobee_django.W081"
W_CACHE_NOT_SHARED = "cobee_django.W082"
#: The admin's OpenID provider endpoints (mozilla-django-oidc's settings).
OIDC_ENDPOINT_SETTINGS = (
    "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "OIDC_OP_TOKEN_ENDPOINT",
    "OIDC_OP_USER_ENDPOINT",
    "OIDC_OP_JWKS_ENDPOINT",
)
#: Cache backends that each process holds on its own (or not at all).
PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(Tags.security, deploy=True)
def check_deployment(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """W080-W082: what works in development but not in production (``check --deploy`` only)."""
    if validate(raw_setting()):
        return []  # the settings checks report what is broken first
    from .conf import get_settings

    cobee = get_settings()
    return [
        *issuer_slash_warnings([issuer.issuer for issuer in cobee.issuers]),
        *oidc_endpoint_warnings(settings),
        *shared_cache_warnings(settings, cobee.jwks_cache_alias, cobee.throttle_cache_alias),
    ]


def issuer_slash_warnings(issuers: Iterable[str]) -> list[CheckMessage]:
    """W080: an Auth0 issuer ends with ``/``, and ``iss`` must equal the setting exactly."""
    return [
        Warning(
            f"The issuer {issuer!r} does not end with '/': Auth0's tokens carry 'https://TENANT.auth0.com/', "
            "and a token whose iss differs by the slash is refused (bad_issuer).",
            hint=f"Write ISSUER as {issuer + '/'!r}, exactly as the iss claim of your tokens.",
            id=W_ISSUER_SLASH,
        )
        for issuer in issuers
        if not issuer.endswith("/")
    ]


def oidc_endpoint_warnings(project: Any) -> list[CheckMessage]:
    """W081: with DEBUG off, the admin's OpenID endpoints must be https and not this machine."""
    if getattr(project, "DEBUG", False):
        return []
    from .conf import get_settings, is_loopback_url

    found = [(name, getattr(project, name, None)) for name in OIDC_ENDPOINT_SETTINGS]
    found.append(("COBEE_DJANGO['ADMIN_OIDC_ISSUER']", get_settings().admin_oidc_issuer))
    return [
        Warning(
            f"{name} is {value!r} while DEBUG is off: staff sign-in goes to a provider on plain http or on "
            "this machine (the development issuer), not to your identity provider.",
            hint="Point the OIDC_OP_* settings at your provider's https endpoints (its discovery document lists "
            "them; manage.py dev_oidc_settings prints the development issuer's).",
            id=W_OIDC_INSECURE,
        )
        for name, value in found
        if isinstance(value, str) and (not value.lower().startswith("https://") or is_loopback_url(value))
    ]


def shared_cache_warnings(project: Any, *aliases: str | None) -> list[CheckMessage]:
    """W082: key sets and throttle counts kept per process: each worker fetches and counts alone."""
    caches = getattr(project, "CACHES", None) or {}
    warnings: list[CheckMessage] = []
    for alias in dict.fromkeys(a for a in aliases if a is not None):
        backend = (caches.get(alias) or {}).get("BACKEND", "")
        if backend in PROCESS_LOCAL_CACHES:
            warnings.append(
                Warning(
                    f"The cache {alias!r} (JWKS_CACHE_ALIAS or THROTTLE_CACHE_ALIAS) is {backend.rsplit('.', 1)[-1]}, "
                    "which no two processes share: each worker downloads key sets on its own and counts "
                    "throttled requests on its own (a limit of N becomes N per worker).",
                    hint="Point the alias at a shared cache (Redis: pip install 'cobee-django[redis]'), or set "
                    "JWKS_CACHE_ALIAS to None to keep key sets in process on purpose.",
                    id=W_CACHE_NOT_SHARED,
                )
            )
    return warnings
