"""Deprecated path of :mod:`cobee_django.staff.admin`, kept for one release.

:mod:`cobee_django.staff.admin` holds the admin classes; Django's autodiscovery imports this path,
which registers them. This module *is* that module (the same object, so settings that name
``cobee_django.admin.<name>`` and code that patches its attributes keep working); import from
``cobee_django.staff.admin``.
"""

import sys

from .staff import admin as _module

__all__: list[str] = []

sys.modules[__name__] = _module
