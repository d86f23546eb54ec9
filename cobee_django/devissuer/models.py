"""Clients of the dev issuer: what an Auth0 machine-to-machine application holds."""

from __future__ import annotations

import secrets
import string
import uuid

from django.db import models

from .hashers import hash_secret, secret_matches

__all__: list[str] = []

CLIENT_ID_ALPHABET = string.ascii_letters + string.digits
DEFAULT_SCOPES = "read:employees write:employees"


def new_client_id() -> str:
    """A random client id shaped like Auth0's (32 letters and digits)."""
    return "".join(secrets.choice(CLIENT_ID_ALPHABET) for _ in range(32))


def new_client_secret() -> str:
    """A random secret as long as Auth0's (64 url-safe characters)."""
    return secrets.token_urlsafe(48)


class DevClientManager(models.Manager["DevClient"]):
    def create_client(
        self,
        *,
        company_id: uuid.UUID,
        corporation_id: uuid.UUID | None = None,
        scopes: str = DEFAULT_SCOPES,
        name: str = "",
        client_id: str | None = None,
    ) -> tuple[DevClient, str]:
        """Store a new client and return it with its secret, which is never stored in clear."""
        secret = new_client_secret()
        client = self.create(
            client_id=client_id or new_client_id(),
            secret_hash=hash_secret(secret),
            company_id=company_id,
            corporation_id=corporation_id,
            scopes=" ".join(scopes.split()),
            name=name,
        )
        return client, secret

    def authenticate(self, client_id: str, secret: str) -> DevClient | None:
        """The client with this id and secret, or None."""
        client = self.filter(client_id=client_id).first()
        if client is None:
            # Hash anyway, so the answer time does not tell which client ids exist.
            hash_secret(secret)
            return None
        return client if client.check_secret(secret) else None


class DevClient(models.Model):
    """A machine client: its tenant (company, optional corporation) and the scopes it may get."""

    client_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    #: A salted one-way hash (see hashers.py); the secret itself is never stored.
    secret_hash = models.CharField(max_length=256)
    company_id = models.UUIDField()
    corporation_id = models.UUIDField(null=True, blank=True)
    #: Space-separated, as in the token's ``scope`` claim.
    scopes = models.CharField(max_length=1000, default=DEFAULT_SCOPES)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DevClientManager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name or self.client_id

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()

    def set_secret(self) -> str:
        """Replace the secret with a new random one and return it (the caller saves)."""
        secret = new_client_secret()
        self.secret_hash = hash_secret(secret)
        return secret

    def check_secret(self, secret: str) -> bool:
        return secret_matches(secret, self.secret_hash)


# The people of the OpenID provider (oidc_provider) live in their own module.
from .people import DevPerson  # noqa: E402, F401
