"""Settings of the test project: the demo, the test bed and the example to copy.

Everything that differs between the demo, the tests and a production-like run comes from the
environment:

- ``DATABASE_URL``: default a SQLite file under ``var/``.
- ``COBEE_DJANGO_ISSUER``: the tokens' ``iss``; default the built-in dev issuer on 127.0.0.1:8000.
- ``COBEE_DJANGO_AUDIENCE``: the API identifier tokens must be issued for.
- ``COBEE_DJANGO_JWKS_URL``: trust this external key set (e.g. real Auth0) and turn the dev issuer off.
- ``REDIS_URL``: share the key-set cache between workers through Redis.
- ``COBEE_OIDC_ISSUER``, ``COBEE_OIDC_CLIENT_ID``, ``COBEE_OIDC_CLIENT_SECRET``: the OpenID provider
  staff sign in to the admin with (default: the dev issuer, when it is on).
- ``DJANGO_DEBUG`` (default on), ``DJANGO_SECRET_KEY``, ``DJANGO_ALLOWED_HOSTS``.
- ``COBEE_DEV_ISSUER_WITHOUT_DEBUG``: let the dev issuer run with DEBUG off (production-like local runs).
- Row-level security (PostgreSQL, docs/row-level-security.md): ``COBEE_ROW_LEVEL_SECURITY=1`` turns
  it on; ``DATABASE_URL`` is then the serving role (not the tables' owner) and
  ``MIGRATE_DATABASE_URL`` the owner, used as the ``migrate`` alias (``manage.py migrate --database
  migrate``). ``DATABASE_TRANSACTION_POOLING=1`` when ``DATABASE_URL`` goes through a pooler in
  transaction mode (PgBouncer): server-side cursors are off.
- ``COBEE_THROTTLE_CLIENT_RATE``, ``COBEE_THROTTLE_COMPANY_RATE``: the API's rate limits per client and
  per company (DRF's ``"N/second|minute|hour|day"``; default generous; an empty value turns one off).
- ``COBEE_TELEMETRY``: OpenTelemetry spans and metrics (default on when the extra ``otel`` is installed).
- ``COBEE_DPOP_MODE``: ``DPOP_MODE`` (``disabled`` by default; ``allowed`` to try DPoP requests).
"""

from __future__ import annotations

import os
import secrets
from importlib.util import find_spec
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
#: Local state (database, generated keys); ignored by git.
VAR_DIR = Path(os.environ.get("COBEE_DEMO_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def _local_secret_key(name: str = "secret_key") -> str:
    """A per-checkout secret kept in var/, so nothing secret is ever committed."""
    path = VAR_DIR / name
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(secrets.token_urlsafe(50))
        tmp.chmod(0o600)
        os.replace(tmp, path)
    return path.read_text().strip()


DEBUG = _env_flag("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _local_secret_key()
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"] + [
    h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h
]

INSTALLED_APPS = [
    # Above django.contrib.admin, so its admin templates (the company switcher) take effect.
    "cobee_django",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "testproject.api",
    # The packaged development token issuer (development only: a check error with DEBUG off).
    "cobee_django.devissuer",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "cobee_django.middleware.TenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "testproject.urls"
WSGI_APPLICATION = "testproject.wsgi.application"
ASGI_APPLICATION = "testproject.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Persistent connections, checked before each request reuses them: opening one per request made the
# API three to four times slower on Citus (docs/operations.md, "Persistent connections"). The tenant
# never outlives its transaction, so a reused connection carries nothing from one request to the next.
# Under ASGI (testproject/asgi.py) each request's sync code runs in a thread of its own, so a kept
# connection per thread would exhaust the server: there, one connection per request, as Django advises.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=0 if os.environ.get("COBEE_SERVED_BY_ASGI") else 600,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's PostgreSQL backend, whose test databases are also made on a Citus cluster's workers.
    DATABASES["default"]["ENGINE"] = "cobee_django.db.backends.citus"
if _env_flag("DATABASE_TRANSACTION_POOLING", False):
    # A cursor cannot stay open across transactions when each may run on another server connection.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
if os.environ.get("MIGRATE_DATABASE_URL"):
    # The same database as the tables' owner: migrations only (the serving role cannot change the schema).
    # Used once per deployment: no need to keep its connection.
    DATABASES["migrate"] = dj_database_url.parse(os.environ["MIGRATE_DATABASE_URL"], conn_max_age=0)
    DATABASES["migrate"]["ENGINE"] = DATABASES["default"]["ENGINE"]
    DATABASES["migrate"]["TEST"] = {"MIRROR": "default"}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several test threads and the live server share one SQLite file: wait instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"]}
        if os.environ.get("REDIS_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"

ISSUER = os.environ.get("COBEE_DJANGO_ISSUER", "http://127.0.0.1:8000/")
AUDIENCE = os.environ.get("COBEE_DJANGO_AUDIENCE", "https://api.cobee.io")
JWKS_URL = os.environ.get("COBEE_DJANGO_JWKS_URL") or None

COBEE_DJANGO: dict[str, object] = {
    "ISSUER": ISSUER,
    "AUDIENCE": AUDIENCE,
    "JWKS_URL": JWKS_URL,
    "ROW_LEVEL_SECURITY": _env_flag("COBEE_ROW_LEVEL_SECURITY", False),
    "DPOP_MODE": os.environ.get("COBEE_DPOP_MODE") or "disabled",
    # Spans and metrics of every decision (docs/observability.md), when the extra "otel" is installed.
    "TELEMETRY": _env_flag("COBEE_TELEMETRY", find_spec("opentelemetry") is not None),
}

# The development token issuer (cobee_django.devissuer): on unless an external key set is trusted.
COBEE_DEV_ISSUER = {
    "ENABLED": JWKS_URL is None,
    "KEY_DIR": VAR_DIR,
    "ALLOW_WITHOUT_DEBUG": _env_flag("COBEE_DEV_ISSUER_WITHOUT_DEBUG", False),
    "TOKEN_LIFETIME": 86400,
}

# Staff sign-in to the admin through OpenID Connect (mozilla-django-oidc). The provider is
# COBEE_OIDC_ISSUER (e.g. https://your-tenant.eu.auth0.com/, whose endpoints have these same paths);
# by default the dev issuer, when it is on. Without a provider, the admin keeps its local
# username/password sign-in only.
OIDC_ISSUER = os.environ.get("COBEE_OIDC_ISSUER") or (ISSUER if COBEE_DEV_ISSUER["ENABLED"] else None)
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
if OIDC_ISSUER:
    _oidc_base = OIDC_ISSUER.rstrip("/")
    AUTHENTICATION_BACKENDS.insert(0, "cobee_django.staff.oidc.StaffOIDCBackend")
    COBEE_DJANGO["ADMIN_OIDC_ISSUER"] = OIDC_ISSUER
    # Staff signed in through OIDC get the Operators group's permissions (manage.py demo creates it).
    COBEE_DJANGO["ADMIN_OIDC_GROUPS"] = ["Operators"]
    OIDC_RP_CLIENT_ID = os.environ.get("COBEE_OIDC_CLIENT_ID", "cobee-admin-dev")
    OIDC_RP_CLIENT_SECRET = os.environ.get("COBEE_OIDC_CLIENT_SECRET") or _local_secret_key("oidc_client_secret")
    OIDC_RP_SIGN_ALGO = "RS256"
    OIDC_RP_SCOPES = "openid email profile"
    OIDC_OP_AUTHORIZATION_ENDPOINT = f"{_oidc_base}/authorize"
    OIDC_OP_TOKEN_ENDPOINT = f"{_oidc_base}/oauth/token"
    OIDC_OP_USER_ENDPOINT = f"{_oidc_base}/userinfo"
    OIDC_OP_JWKS_ENDPOINT = f"{_oidc_base}/.well-known/jwks.json"
    OIDC_USE_PKCE = True
    OIDC_TIMEOUT = 5
    LOGIN_REDIRECT_URL = "/admin/"
    LOGIN_REDIRECT_URL_FAILURE = "/admin/login/"
    LOGOUT_REDIRECT_URL = "/admin/login/"

REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["cobee_django.authentication.JWTAuthentication"],
    # The API speaks JSON to machines (CSV where a view adds it): no browsable API.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's parsers, with a JSON parser that answers 400 (not 500) to bodies nested too deeply.
    "DEFAULT_PARSER_CLASSES": [
        "testproject.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    # The OpenAPI document at /api/schema/ (drf-spectacular; cobee_django adds the security schemes).
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Rate limits per API client and per company (docs/throttling.md), counted in the default cache
    # (Redis with REDIS_URL, so every worker shares them). Only verified tokens are ever counted.
    "DEFAULT_THROTTLE_CLASSES": [
        "cobee_django.throttling.ClientRateThrottle",
        "cobee_django.throttling.CompanyRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "cobee_client": os.environ.get("COBEE_THROTTLE_CLIENT_RATE", "20000/minute") or None,
        "cobee_company": os.environ.get("COBEE_THROTTLE_COMPANY_RATE", "50000/minute") or None,
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Cobee Partner API (test project)",
    "VERSION": "3",
    "SERVE_INCLUDE_SCHEMA": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"cobee_django": {"handlers": ["console"], "level": os.environ.get("COBEE_LOG_LEVEL", "INFO")}},
}

# Celery (testproject/celery.py): a worker runs with ``celery -A testproject worker``. With
# CELERY_TASK_ALWAYS_EAGER=1 tasks run in the calling process instead (no broker needed).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ALWAYS_EAGER = _env_flag("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
