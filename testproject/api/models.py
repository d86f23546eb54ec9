"""The test project's API data: a small slice of Cobee's Partner API.

Every model is a :class:`~cobee_django.models.TenantModel`: it belongs to one company and its
default manager only ever sees the companies bound to the current request.
"""

from __future__ import annotations

import uuid

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from cobee_django.models import TenantModel

#: Money is always euros in Cobee's API.
CURRENCIES = [("EUR", "EUR")]
PAYROLL_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
payroll_validator = RegexValidator(PAYROLL_PATTERN, "A payroll cycle is YYYY-MM.")


class EmployeeState(models.TextChoices):
    NOT_ACTIVE = "not-active", "not active"
    ACTIVE = "active", "active"
    REMOVED = "removed", "removed"
    BLOCKED = "blocked", "blocked"


class TaxRegime(models.TextChoices):
    GENERAL = "general", "general"
    BASQUE = "basque", "Basque"
    NAVARRESE = "navarrese", "Navarrese"
    BISCAYAN = "biscayan", "Biscayan"


class BenefitCategory(models.TextChoices):
    MEAL = "meal-benefit", "meal"
    TRANSPORT = "transport-benefit", "transport"
    NURSERY = "nursery-benefit", "nursery"
    HEALTH_INSURANCE = "health-insurance-benefit", "health insurance"
    TRAINING = "training-benefit", "training"


class BagPeriod(models.TextChoices):
    MONTHLY = "monthly", "monthly"
    YEARLY = "yearly", "yearly"


class BenefitModel(TenantModel):
    """A company's benefit plan: which benefit bags its employees get."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class BenefitBagConfig(TenantModel):
    """One bag of a benefit model: the categories it may pay for and its limit."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    benefit_model = models.ForeignKey(BenefitModel, on_delete=models.CASCADE, related_name="bag_configs")
    name = models.CharField(max_length=200)
    allowed_for = models.JSONField(default=list)
    limit_amount_in_cents = models.BigIntegerField(validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, choices=CURRENCIES, default="EUR")
    period = models.CharField(max_length=16, choices=BagPeriod.choices, default=BagPeriod.MONTHLY)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Employee(TenantModel):
    """An employee of one company. One who moves to another company gets a new row there."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    email = models.EmailField()
    legal_id = models.CharField(max_length=32)
    name = models.CharField(max_length=150)
    surname = models.CharField(max_length=150)
    birth_date = models.DateField(null=True, blank=True)
    hiring_date = models.DateField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=EmployeeState.choices, default=EmployeeState.ACTIVE)
    tax_regime = models.CharField(max_length=16, choices=TaxRegime.choices, default=TaxRegime.GENERAL)
    internal_id = models.CharField(max_length=64, blank=True)
    cost_center = models.CharField(max_length=64, blank=True)
    payroll_company = models.CharField(max_length=200, blank=True)
    gross_salary_in_cents = models.BigIntegerField(null=True, blank=True, validators=[MinValueValidator(0)])
    gross_salary_currency = models.CharField(max_length=3, choices=CURRENCIES, default="EUR")
    model = models.ForeignKey(BenefitModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="employees")
    workday_configuration = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["surname", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["company", "email"], name="api_employee_unique_email"),
            models.UniqueConstraint(fields=["company", "legal_id"], name="api_employee_unique_legal_id"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.surname}"


class Consumption(TenantModel):
    """Money an employee spent from a benefit in one payroll cycle."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="consumptions")
    category = models.CharField(max_length=32, choices=BenefitCategory.choices)
    amount_in_cents = models.BigIntegerField(validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, choices=CURRENCIES, default="EUR")
    payroll = models.CharField(max_length=7, validators=[payroll_validator])
    date = models.DateField()
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["date", "id"]
        indexes = [models.Index(fields=["company", "payroll"], name="api_consumption_payroll")]

    def __str__(self) -> str:
        return f"{self.category} {self.amount_in_cents}"
