"""Settings of the test project as the adversarial harness serves it.

Exactly ``testproject.settings`` (which reads the issuer, audience, key-set URL and database from
the environment), plus ``COBEE_DJANGO`` keys from the JSON object in ``COBEE_ADVERSARIAL_SETTINGS``:
the fault suite shortens the key-set cooldown, TTL and timeout so faults show up in seconds.
"""

import json
import os

from testproject.settings import *  # noqa: F403
from testproject.settings import COBEE_DJANGO

COBEE_DJANGO = {**COBEE_DJANGO, **json.loads(os.environ.get("COBEE_ADVERSARIAL_SETTINGS") or "{}")}

# Server errors reach the server's log (Django only prints them with DEBUG on): a 500 found by a
# suite comes with its traceback, and a suite can assert the log holds none.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "cobee_django": {"handlers": ["console"], "level": "INFO"},
    },
}
