"""The demo's dev issuer clients, whose secrets can be shown again on every run.

Secrets are stored hashed in the database like any client's; the demo also keeps them in clear in
``var/demo-clients.json`` (git-ignored, mode 0600) so a second ``manage.py demo`` can print them
again. A secret missing from that file, or no longer matching, is rotated and the new one saved.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from cobee_django.devissuer.models import DevClient

READ_WRITE = "read:employees write:employees"


@dataclass(frozen=True)
class DemoClient:
    client_id: str
    secret: str
    label: str
    company_id: uuid.UUID
    corporation_id: uuid.UUID | None


def secrets_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-clients.json"


def _load(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return (
        {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(data, dict) else {}
    )


def _save(path: Path, secrets: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    with os.fdopen(fd, "w") as handle:
        json.dump(secrets, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)


def ensure_client(
    client_id: str, *, label: str, company_id: uuid.UUID, corporation_id: uuid.UUID | None, known: dict[str, str]
) -> DemoClient:
    """Create or refresh one demo client; ``known`` maps client ids to secrets and is updated."""
    client = DevClient.objects.filter(client_id=client_id).first()
    secret = known.get(client_id)
    if client is None:
        client, secret = DevClient.objects.create_client(
            client_id=client_id, company_id=company_id, corporation_id=corporation_id, scopes=READ_WRITE, name=label
        )
    else:
        client.company_id, client.corporation_id, client.scopes, client.name = (
            company_id,
            corporation_id,
            READ_WRITE,
            label,
        )
        if secret is None or not client.check_secret(secret):
            secret = client.set_secret()
        client.save()
    known[client_id] = secret
    return DemoClient(client_id, secret, label, company_id, corporation_id)


@transaction.atomic
def ensure_clients(specs: list[tuple[str, str, uuid.UUID, uuid.UUID | None]]) -> list[DemoClient]:
    """Every demo client of ``specs`` (client id, label, company, corporation), secrets included."""
    path = secrets_file()
    known = _load(path)
    clients = [
        ensure_client(client_id, label=label, company_id=company, corporation_id=corporation, known=known)
        for client_id, label, company, corporation in specs
    ]
    _save(path, known)
    return clients
