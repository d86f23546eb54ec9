"""Trust a key set for an issuer without any HTTP, for the whole process (until uninstalled).

The testing names of :func:`cobee_django.jwks.pin_key_set`, :func:`~cobee_django.jwks.unpin_key_set`
and :func:`~cobee_django.jwks.pinned_key_set`; :func:`cobee_django.testing.trust` wraps them for a block.
"""

from __future__ import annotations

from ..jwks import pin_key_set as install_key_set
from ..jwks import pinned_key_set as installed_key_set
from ..jwks import unpin_key_set as uninstall_key_set

__all__ = ["install_key_set", "installed_key_set", "uninstall_key_set"]
