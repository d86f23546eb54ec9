"""Settings of the quick start's project: a scoped API with the development token issuer."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Development only: read a real secret from the environment in any deployed settings.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-quickstart-only")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    # Above django.contrib.admin, so the admin shows its company switcher (check cobee_django.W001).
    "cobee_django",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "payroll",
    # Tokens for local development (a system-check error with DEBUG off): remove it in production.
    "cobee_django.devissuer",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After AuthenticationMiddleware: binds each request to the caller's companies.
    "cobee_django.middleware.TenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"

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

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"

COBEE_DJANGO = {
    # In development the issuer is this server (cobee_django.devissuer on runserver's address).
    # In production: your Auth0 tenant, e.g. "https://your-tenant.eu.auth0.com/".
    "ISSUER": "http://127.0.0.1:8000/",
    "AUDIENCE": "https://api.example.com",
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["cobee_django.authentication.JWTAuthentication"],
}
