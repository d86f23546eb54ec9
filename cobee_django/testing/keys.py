"""Make the app trust a test issuer's keys: per block, without HTTP, restoring what was there before."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from cryptography.hazmat.primitives.asymmetric import rsa

from ..conf import get_settings
from ..exceptions import CobeeDjangoError
from ._keysets import install_key_set, installed_key_set, uninstall_key_set
from .issuer import TokenIssuer

__all__: list[str] = []

_lock = threading.Lock()
_key: rsa.RSAPrivateKey | None = None
_issuers: dict[tuple[str, str, str], TokenIssuer] = {}


def _shared_key() -> rsa.RSAPrivateKey:
    # Generating an RSA key is the slow part of an issuer: one per test process is enough.
    global _key
    with _lock:
        if _key is None:
            _key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _key


def configured_issuer() -> TokenIssuer:
    """A :class:`TokenIssuer` whose tokens look like your issuer's: the first configured ``ISSUER``,
    its first ``AUDIENCE`` (sorted) and your ``METADATA_CLAIM``.

    Its key pair is generated once per process, so it is *not* your issuer's: the app accepts its
    tokens only while :func:`trust` (or the pytest fixtures) install its key set. One instance is
    kept per settings, so ``override_settings`` gets a matching issuer.
    """
    settings = get_settings()
    if not settings.issuers:
        raise CobeeDjangoError("configured_issuer() needs COBEE_DJANGO['ISSUER'] (or ISSUERS) to be set.")
    first = settings.issuers[0]
    identity = (first.issuer, sorted(first.audiences)[0], settings.metadata_claim)
    with _lock:
        issuer = _issuers.get(identity)
    if issuer is None:
        issuer = TokenIssuer(issuer=identity[0], audience=identity[1], metadata_claim=identity[2], key=_shared_key())
        with _lock:
            issuer = _issuers.setdefault(identity, issuer)
    return issuer


@contextmanager
def trust(issuer: TokenIssuer | None = None) -> Iterator[TokenIssuer]:
    """Trust ``issuer``'s key set (default :func:`configured_issuer`) for the block, without HTTP.

    The set replaces, for that ``iss``, whatever keys the app would fetch; on exit the previously
    installed set (if any) is restored, so blocks nest. Process-wide: a live server thread sees it
    too.
    """
    issuer = issuer if issuer is not None else configured_issuer()
    document = issuer.jwks()
    previous = installed_key_set(issuer.issuer)
    if previous == document:
        yield issuer  # already trusted by an enclosing block: nothing to install or restore
        return
    install_key_set(issuer.issuer, document)
    try:
        yield issuer
    finally:
        if previous is None:
            uninstall_key_set(issuer.issuer)
        else:
            install_key_set(issuer.issuer, previous)


@contextmanager
def isolated_cache() -> Iterator[None]:
    """Give every cache alias a fresh key prefix for the block: throttle counts, cached key sets and
    verified tokens from before (another test) are not seen, and nothing written leaks out.

    Nothing is deleted (a shared Redis keeps other users' keys); the in-process key sets are dropped
    too (installed ones stay), as ``COBEE_DJANGO`` reloads when ``CACHES`` changes.
    """
    from django.conf import settings
    from django.test import override_settings

    prefix = f"cobee-test-{uuid.uuid4().hex}-"
    caches = {
        alias: {**config, "KEY_PREFIX": prefix + str(config.get("KEY_PREFIX", ""))}
        for alias, config in getattr(settings, "CACHES", {}).items()
    }
    with override_settings(CACHES=caches):
        yield
