"""People who can sign in to the admin through the dev issuer's OpenID provider (development only).

Each one stands for an account at the real provider (Auth0): a subject, a name, and the claims the
provider would put in the ID token (the metadata claim's companyId / corporationId, and the
Cobee-wide staff flag). There is no password: the dev provider's sign-in page lists them.
"""

from __future__ import annotations

from django.db import models

__all__: list[str] = []


class DevPerson(models.Model):
    subject = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    company_id = models.UUIDField(null=True, blank=True)
    corporation_id = models.UUIDField(null=True, blank=True)
    #: Sends the staff claim (``COBEE_DJANGO["ADMIN_STAFF_CLAIM"]``): reaches every company.
    cobee_staff = models.BooleanField(default=False)

    class Meta:
        ordering = ["name", "subject"]

    def __str__(self) -> str:
        return f"{self.name} ({self.subject})"
