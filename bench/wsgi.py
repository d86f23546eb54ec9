"""The WSGI application served by ``bench_server``: the bench settings, a key set installed in process.

Environment: ``BENCH_JWKS`` (the JWK set to trust for the bench issuer, as JSON) and
``BENCH_WITHOUT_APP=1`` to serve the baseline side (the project's middleware minus cobee_django's).
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

from cobee_django.testing import install_key_set  # noqa: E402

if os.environ.get("BENCH_WITHOUT_APP"):
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if not name.startswith("cobee_django.")]
install_key_set(settings.ISSUER, json.loads(os.environ["BENCH_JWKS"]))
application = get_wsgi_application()
