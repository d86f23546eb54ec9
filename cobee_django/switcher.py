"""Deprecated path of :mod:`cobee_django.staff.switcher`, kept for one release.

:mod:`cobee_django.staff.switcher` holds the admin's company switcher view. This module *is* that
module (the same object, so settings that name ``cobee_django.switcher.<name>`` and code that
patches its attributes keep working); import from ``cobee_django.staff.switcher``.
"""

import sys

from .staff import switcher as _module

__all__: list[str] = []

sys.modules[__name__] = _module
