import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
# Read by the settings: under ASGI each request's sync code runs in a thread of its own, so persistent
# connections would pile up one per thread (Django advises CONN_MAX_AGE = 0 there, or a pool).
os.environ["COBEE_SERVED_BY_ASGI"] = "1"
application = get_asgi_application()
