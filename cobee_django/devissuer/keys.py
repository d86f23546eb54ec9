"""The dev issuer's signing key: generated on first use, kept in a file, shared by every process.

The key file lives in ``COBEE_DEV_ISSUER["KEY_DIR"]``; a folder created here gets a ``.gitignore``
of ``*`` so the private key is never committed by accident. Creation is atomic: a process
writes a complete key to a private temporary file and hard-links it into place, which fails if
another process got there first; the loser then reads the winner's key. So several workers (or
runserver and a test) started at once always agree on one key and nobody reads a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path

from django.core.signals import setting_changed
from django.dispatch import receiver

from cobee_django.testing import TokenIssuer

from . import conf

__all__: list[str] = []

_lock = threading.Lock()
_issuers: dict[tuple[Path, str, str], TokenIssuer] = {}


def _as_bytes(pem: bytes | str) -> bytes:
    return pem if isinstance(pem, bytes) else pem.encode("ascii")


def _make_private_folder(folder: Path) -> None:
    """Create ``folder`` if missing; a new one ignores its own contents in git."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError), (folder / ".gitignore").open("x") as ignore:
        ignore.write("# Written by cobee_django.devissuer: local keys and state, never committed.\n*\n")


def load_or_create_key(path: Path) -> bytes:
    """The PEM private key stored at ``path``, created there first if missing."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    _make_private_folder(path.parent)
    pem = _as_bytes(TokenIssuer(issuer=conf.served_issuer().issuer, audience=conf.default_audience()).private_key_pem())
    # mkstemp creates the file with mode 0600: the private key is never readable by others.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        # Another process may have created the key first: then everyone uses theirs.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return path.read_bytes()


def get_issuer() -> TokenIssuer:
    """The process-wide token issuer holding the shared key, issuing as ``COBEE_DJANGO``'s issuer."""
    path, issuer, audience = conf.key_file(), conf.served_issuer().issuer, conf.default_audience()
    with _lock:
        token_issuer = _issuers.get((path, issuer, audience))
        if token_issuer is None:
            token_issuer = TokenIssuer.from_pem(load_or_create_key(path), issuer=issuer, audience=audience)
            _issuers[(path, issuer, audience)] = token_issuer
        return token_issuer


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs: object) -> None:
    if setting in {conf.SETTING_NAME, "BASE_DIR"}:
        with _lock:
            _issuers.clear()
