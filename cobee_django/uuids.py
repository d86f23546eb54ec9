"""The one rule for company and corporation ids: a UUID in canonical form only.

Canonical is lower-case, hyphenated, 36 characters (``str(uuid.UUID(...))``). ``uuid.UUID`` itself
also accepts upper case, braces, ``urn:uuid:`` and missing hyphens; refusing those gives every id one
spelling, so ids compared as strings (in logs, caches, SQL written by others) compare the same as UUIDs.
Tokens (``companyId``, ``corporationId``) and URLs (``COMPANY_URL_KWARG``, ``CORPORATION_URL_KWARG``)
follow it, and so do the claims of staff signing in to the admin (:mod:`cobee_django.staff.oidc`).
"""

from __future__ import annotations

import uuid

__all__: list[str] = []


def parse_uuid(value: object) -> uuid.UUID | None:
    """``value`` as a UUID when it is one, or a string in canonical form; ``None`` for anything else."""
    if isinstance(value, uuid.UUID):
        return value
    if type(value) is not str or len(value) != 36:
        return None
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    return parsed if str(parsed) == value else None
