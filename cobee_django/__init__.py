"""Cobee's Partner API security model for Django REST framework services.

The package in layers; a module imports only from layers above it in this list (and from its own
layer's earlier modules), which ``tests/test_layers.py`` holds to no import cycle:

1. Foundations: ``conf`` (the one settings table), ``uuids``, ``company_field``, ``principal``,
   ``signals``, ``bearer`` (RFC 6750), ``exceptions``, ``reasons``, ``telemetry``.
2. The tenant: ``state`` (a ContextVar; imports only ``exceptions``).
3. Tokens: ``jose`` < ``jwks`` < ``tokens`` < ``authentication``; ``audit``.
4. Tenancy in the ORM: ``db.citus`` < ``guards`` < ``managers`` < ``models`` < ``membership``;
   background work: ``tasks``, ``celery``.
5. Requests: ``permissions``, ``throttling``, ``views``, ``middleware``, ``openapi``.
6. The database walls: ``db.policy``, ``db.rls``, ``db.operations``, ``db.checks``, ``db.backends.citus``.
7. Staff and the admin: ``staff`` (grants) < ``staff.oidc``, ``staff.admin``, ``staff.switcher``.
8. Wiring: ``checks``, ``tenancy_setup``, ``apps``, ``urls``.
9. Optional apps and helpers: ``devissuer`` (development token issuer), ``testing``.

Nothing is imported here, so settings can import the package without loading models.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
