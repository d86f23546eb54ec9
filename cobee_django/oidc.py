"""Deprecated path of :mod:`cobee_django.staff.oidc`, kept for one release.

:mod:`cobee_django.staff.oidc` holds the staff's OpenID Connect sign-in. This module *is* that
module (the same object, so settings that name ``cobee_django.oidc.<name>`` and code that patches
its attributes keep working); import from ``cobee_django.staff.oidc``.
"""

import sys

from .staff import oidc as _module

__all__: list[str] = []

sys.modules[__name__] = _module
