"""Cobee's Partner API security model for Django REST framework services.

The package in layers: a module imports only from the layers above it in this list, and from the
modules listed before it in its own layer. ``tests/test_layers.py`` holds the code to this list and
to no import cycle.

1. Foundations: ``conf`` (the one settings table), ``uuids``, ``company_field``, ``principal``,
   ``signals``, ``bearer`` (RFC 6750), ``exceptions`` (every error and the reason codes),
   ``instrumentation`` (no-op hooks).
2. The tenant: ``state`` (a ContextVar; it imports only the exceptions module).
3. Tokens: ``jose`` < ``jwks`` < ``tokens`` < ``dpop`` < ``mtls`` < ``audit`` < ``credentials`` < ``authentication``.
4. Tenancy in the ORM: ``guards`` < ``managers`` < ``_django`` (every override of Django internals) <
   ``models`` < ``membership``; background work: ``tasks``.
5. The database walls: ``db._catalog``, ``db.policy``, ``db.rls``, ``db.operations``, ``db.citus``,
   ``db.checks``, ``db.backends.citus``. The core above asks the backend's features, never these.
6. Staff and the admin: ``staff`` (grants) < ``staff.oidc``, ``staff.switcher`` < ``admin`` (the classes users import).
7. Requests: ``permissions``, ``serializers``, ``throttling``, ``views``, ``middleware``.
8. Optional integrations, loaded by the app config only when the project turns them on:
   ``contrib.celery``, ``contrib.opentelemetry``, ``contrib.drf_spectacular``, ``contrib.ninja``.
9. Wiring: ``checks``, ``apps``, ``urls``.
10. Optional helpers and apps: ``testing`` < ``devissuer`` (the development token issuer).

Nothing is imported here, so settings can import the package without loading models.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
