"""The test project's Celery app: tasks carry the bound tenant in their headers.

Start a worker with ``celery -A testproject worker`` (the broker is ``CELERY_BROKER_URL``,
default the Redis on 127.0.0.1). See the "Celery" page of the docs.
"""

from __future__ import annotations

import os

from celery import Celery

from cobee_django.contrib.celery import install

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")

app = Celery("testproject")
app.config_from_object("django.conf:settings", namespace="CELERY")
# The one line that makes every task of this app carry and bind the tenant.
install(app)
app.autodiscover_tasks()
