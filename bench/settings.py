"""Settings of the request and data-scale benchmarks: the test project on the bench database.

Differences from the test project, each so that the figures measure the app and not the setup:
``DEBUG`` off (Django would record every query), persistent database connections (a connection
per request would dwarf everything else), and a fixed trusted issuer whose key set the
benchmark installs in process (the development issuer is off).
"""

from __future__ import annotations

import os

os.environ.setdefault("COBEE_DJANGO_ISSUER", "https://bench.invalid/")
os.environ.setdefault("COBEE_DJANGO_JWKS_URL", "https://bench.invalid/.well-known/jwks.json")

import dj_database_url

from bench.common import database_url
from testproject.settings import *  # noqa: F403

DEBUG = False
DATABASES = {"default": dj_database_url.parse(os.environ.get("BENCH_SCALE_DATABASE_URL") or database_url())}
DATABASES["default"]["CONN_MAX_AGE"] = None
ROOT_URLCONF = "bench.urls"
LOGGING = {"version": 1, "disable_existing_loggers": False}
