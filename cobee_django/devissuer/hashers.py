"""How client secrets are hashed: a Django password hasher, tuned for machine-generated secrets.

A client secret is 48 random bytes (384 bits). Nobody can guess it from a dictionary, so the key
stretching that protects human passwords (Django's default: a million PBKDF2 rounds, about 0.3 s of
CPU per check) buys nothing here and would make every token request and every demo start slow. What
protects a secret at rest is a salted one-way hash, which this keeps. Users' passwords are untouched:
this hasher is used explicitly for client secrets and is not in ``PASSWORD_HASHERS``.
"""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher, check_password, make_password

__all__: list[str] = []


class ClientSecretHasher(PBKDF2PasswordHasher):
    """PBKDF2-SHA256 with few rounds, for high-entropy machine secrets only."""

    algorithm = "devclient_pbkdf2_sha256"
    iterations = 1_000


_hasher = ClientSecretHasher()


def hash_secret(secret: str) -> str:
    """The salted hash stored in place of ``secret``."""
    return make_password(secret, hasher=_hasher)


def secret_matches(secret: str, encoded: str) -> bool:
    """Whether ``secret`` hashes to ``encoded`` (compared in constant time)."""
    if encoded.startswith(f"{_hasher.algorithm}$"):
        return _hasher.verify(secret, encoded)
    # Stored by an earlier version with the project's default password hasher.
    return check_password(secret, encoded)
