"""Tenant models covering every relation kind the scoping and the write guards must handle."""

from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models

from cobee_django.models import TenantModel


class Department(TenantModel):
    name = models.CharField(max_length=100)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="testapp_department_name_per_company")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return f"/departments/{self.pk}"


class Project(TenantModel):
    name = models.CharField(max_length=100)


class Employee(TenantModel):
    email = models.CharField(max_length=100)
    name = models.CharField(max_length=100, blank=True)
    salary = models.IntegerField(default=0)
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="employees"
    )
    projects = models.ManyToManyField(Project, blank=True, related_name="members")

    class Meta:
        unique_together = [("company", "email")]

    def __str__(self) -> str:
        return self.email


class Badge(TenantModel):
    """One-to-one with an employee (reverse one-to-one accessor: ``employee.badge``)."""

    employee = models.OneToOneField(Employee, on_delete=models.CASCADE, related_name="badge")
    code = models.CharField(max_length=20)


class Note(models.Model):
    """Not a tenant model, but it points at tenant rows."""

    text = models.CharField(max_length=100)
    employee = models.ForeignKey(Employee, null=True, blank=True, on_delete=models.CASCADE, related_name="notes")
    watchers = models.ManyToManyField(Employee, blank=True, related_name="watched_notes")

    def __str__(self) -> str:
        return self.text


class Lead(Employee):
    """A multi-table child of a tenant model: its company is in its parent's (``Employee``) table."""

    level = models.IntegerField(default=1)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads")


class Tag(models.Model):
    """Not a tenant model: a generic foreign key that may name a tenant row."""

    label = models.CharField(max_length=50)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")

    def __str__(self) -> str:
        return self.label


class Ledger(models.Model):
    """Not a ``TenantModel``: its company is the foreign key ``owner`` (an admin's ``tenant_field``)."""

    owner = models.ForeignKey("cobee_django.Company", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return f"/ledgers/{self.pk}"


class LedgerEntry(models.Model):
    """Hangs from a ledger (an inline of it), its company also named ``owner``."""

    owner = models.ForeignKey("cobee_django.Company", on_delete=models.CASCADE, related_name="+")
    ledger = models.ForeignKey(Ledger, on_delete=models.CASCADE, related_name="entries")
    label = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.label
