"""``ENGINE: "cobee_django.db.backends.citus"``: Django's PostgreSQL backend with Citus-aware test databases."""

__all__: list[str] = []
