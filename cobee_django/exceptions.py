"""Errors raised by cobee_django.

``CobeeDjangoError`` and its subclasses mean the library was misused or a tenant rule was broken
(programming errors: they surface as 500s and must be fixed in code). HTTP failures a client can
cause are DRF ``APIException`` subclasses defined next to the code that raises them.
"""

from __future__ import annotations


class CobeeDjangoError(Exception):
    """Base class of every error cobee_django raises for misuse."""


class TenantError(CobeeDjangoError):
    """A tenant rule was broken."""


class NoTenantBound(TenantError):
    """A tenant model was queried or written with no tenant bound (fail closed)."""


class TenantViolation(TenantError):
    """A write would put a row, or a reference, outside the bound tenant."""
