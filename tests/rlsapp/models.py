from __future__ import annotations

import uuid

from django.db import models

from cobee_django.models import TenantModel


class Team(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    name = models.CharField(max_length=50)


class Member(TenantModel):
    name = models.CharField(max_length=50)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="members")


class Note(TenantModel):
    """A tenant model left without row-level security, so the checks have something to report."""

    text = models.CharField(max_length=50)
    member = models.ForeignKey(Member, null=True, on_delete=models.CASCADE)
