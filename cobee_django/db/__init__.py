"""The second wall: PostgreSQL row-level security for tenant models (optional, off by default).

- :mod:`cobee_django.db.policy`: the policies, the settings they read, and how to tell whether a
  database is protected;
- :mod:`cobee_django.db.operations`: migration operations that install them;
- :mod:`cobee_django.db.rls`: the per-statement path that hands the bound companies to PostgreSQL;
- :mod:`cobee_django.db.checks`: system checks that refuse unsafe setups.
"""

__all__: list[str] = []
