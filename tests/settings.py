"""Settings of the test suite: the test project's apps and API plus the tests' own apps, nothing more.

Independent of ``testproject.settings`` (which keeps local state in ``var/`` for the demo): importing
this module writes nothing in the checkout. The secret key is made at import and the development
issuer keeps its key in a temporary directory removed when the process exits. Only two things come
from the environment:

- ``DATABASE_URL``: default an SQLite file in that temporary directory (the tests use Django's test
  database, in memory on SQLite); a PostgreSQL URL runs on ``cobee_django.db.backends.citus``.
- ``REDIS_URL``: the default cache (the key-set cache, the throttles); default a local memory cache.

Tests that exercise the test project itself (the demo, a served project, a Celery worker) start it in
a subprocess with ``DJANGO_SETTINGS_MODULE=testproject.settings``.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from importlib.util import find_spec
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
#: The development issuer's key and the demo's files of this process (never the checkout's var/).
VAR_DIR = Path(tempfile.mkdtemp(prefix="cobee-tests-"))
atexit.register(shutil.rmtree, VAR_DIR, ignore_errors=True)

DEBUG = True
SECRET_KEY = secrets.token_urlsafe(50)
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

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
    "cobee_django.devissuer",
    "tests.testapp",
    "tests.rlsapp",
    "tests.zooapp",
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

# The test project's API, admin and dev issuer; a test module picks its own with pytest.mark.urls.
ROOT_URLCONF = "testproject.urls"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}", conn_max_age=0
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's PostgreSQL backend, whose test databases are also made on a Citus cluster's workers.
    DATABASES["default"]["ENGINE"] = "cobee_django.db.backends.citus"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several test threads and the live server share one SQLite database: wait instead of failing.
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

# The test project's issuer and audience (its dev issuer signs the tokens its API accepts).
ISSUER = "http://127.0.0.1:8000/"
AUDIENCE = "https://api.cobee.io"

COBEE_DJANGO: dict[str, object] = {
    "ISSUER": ISSUER,
    "AUDIENCE": AUDIENCE,
    "JWKS_URL": None,
    "ROW_LEVEL_SECURITY": False,
    "TELEMETRY": find_spec("opentelemetry") is not None,
    # Staff sign in to the admin through the dev issuer's OpenID provider (the OIDC settings below).
    "ADMIN_OIDC_ISSUER": ISSUER,
    "ADMIN_OIDC_GROUPS": ["Operators"],
}

COBEE_DEV_ISSUER = {
    "ENABLED": True,
    "KEY_DIR": VAR_DIR,
    "ALLOW_WITHOUT_DEBUG": False,
    "TOKEN_LIFETIME": 86400,
}

# mozilla-django-oidc, pointed at the dev issuer (the admin's OIDC tests repoint it at their provider).
AUTHENTICATION_BACKENDS = ["cobee_django.staff.oidc.StaffOIDCBackend", "django.contrib.auth.backends.ModelBackend"]
OIDC_RP_CLIENT_ID = "cobee-admin-dev"
OIDC_RP_CLIENT_SECRET = secrets.token_urlsafe(32)
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_RP_SCOPES = "openid email profile"
OIDC_OP_AUTHORIZATION_ENDPOINT = f"{ISSUER}authorize"
OIDC_OP_TOKEN_ENDPOINT = f"{ISSUER}oauth/token"
OIDC_OP_USER_ENDPOINT = f"{ISSUER}userinfo"
OIDC_OP_JWKS_ENDPOINT = f"{ISSUER}.well-known/jwks.json"
OIDC_USE_PKCE = True
OIDC_TIMEOUT = 5
LOGIN_REDIRECT_URL = "/admin/"
LOGIN_REDIRECT_URL_FAILURE = "/admin/login/"
LOGOUT_REDIRECT_URL = "/admin/login/"

REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["cobee_django.authentication.JWTAuthentication"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "testproject.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "cobee_django.throttling.ClientRateThrottle",
        "cobee_django.throttling.CompanyRateThrottle",
    ],
    # The test project's generous defaults; the throttling tests set their own rates.
    "DEFAULT_THROTTLE_RATES": {"cobee_client": "20000/minute", "cobee_company": "50000/minute"},
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
    "loggers": {"cobee_django": {"handlers": ["console"], "level": "INFO"}},
}

# Celery (testproject/celery.py reads these): the worker tests start real workers against this broker.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
