"""Cobee's JSON: camelCase names, money as ``{"amountInCents", "currency"}``, dates as ISO 8601."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework import serializers

from cobee_django.serializers import CompanyRelatedField

from .models import (
    PAYROLL_PATTERN,
    BenefitBagConfig,
    BenefitCategory,
    BenefitModel,
    Consumption,
    Employee,
    EmployeeState,
    TaxRegime,
)

MAX_CENTS = 10**13


class MoneySerializer(serializers.Serializer[dict[str, Any]]):
    amountInCents = serializers.IntegerField(min_value=0, max_value=MAX_CENTS)
    currency = serializers.ChoiceField(choices=["EUR"], default="EUR")


class MoneyField(serializers.Field[Any, Any, Any, Any]):
    """Two model attributes (amount in cents, currency) shown as one money object."""

    def __init__(self, amount: str, currency: str, **kwargs: Any) -> None:
        self.amount_attr = amount
        self.currency_attr = currency
        kwargs.setdefault("source", "*")
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> dict[str, Any] | None:
        amount = getattr(value, self.amount_attr)
        if amount is None:
            return None
        return {"amountInCents": amount, "currency": getattr(value, self.currency_attr)}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if data is None:
            return {self.amount_attr: None}
        if not isinstance(data, dict):
            raise serializers.ValidationError('Expected {"amountInCents": int, "currency": "EUR"}.')
        money = MoneySerializer(data=data)
        money.is_valid(raise_exception=True)
        return {
            self.amount_attr: money.validated_data["amountInCents"],
            self.currency_attr: money.validated_data["currency"],
        }

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        # null is a value here (no salary), handled by to_internal_value.
        if data is None and self.allow_null:
            return False, data
        return super().validate_empty_values(data)


class MetadataField(serializers.DictField):
    """Free key/value strings the partner keeps on an employee."""

    child = serializers.CharField(max_length=500, allow_blank=True)

    def to_internal_value(self, data: Any) -> dict[str, str]:
        value = super().to_internal_value(data)
        if len(value) > 50:
            raise serializers.ValidationError("At most 50 keys.")
        if any(not key or len(key) > 100 for key in value):
            raise serializers.ValidationError("Keys are 1 to 100 characters.")
        return value


class EmployeeSerializer(serializers.ModelSerializer[Employee]):
    """An employee as Cobee's API shows it. The company comes from the URL, never from the body."""

    companyId = serializers.UUIDField(source="company_id", read_only=True)
    legalId = serializers.CharField(source="legal_id", max_length=32)
    birthDate = serializers.DateField(source="birth_date", required=False, allow_null=True)
    hiringDate = serializers.DateField(source="hiring_date", required=False, allow_null=True)
    state = serializers.ChoiceField(choices=EmployeeState.choices, required=False)
    taxRegime = serializers.ChoiceField(source="tax_regime", choices=TaxRegime.choices, required=False)
    internalId = serializers.CharField(source="internal_id", max_length=64, required=False, allow_blank=True)
    costCenter = serializers.CharField(source="cost_center", max_length=64, required=False, allow_blank=True)
    payrollCompany = serializers.CharField(source="payroll_company", max_length=200, required=False, allow_blank=True)
    grossSalary = MoneyField("gross_salary_in_cents", "gross_salary_currency", required=False, allow_null=True)
    # A benefit model of another company (even a sibling the caller may read) is not a choice: a 400.
    modelId = CompanyRelatedField(source="model", queryset=BenefitModel.objects.all(), required=False, allow_null=True)
    workdayConfiguration = serializers.DictField(source="workday_configuration", required=False)
    metadata = MetadataField(required=False)

    class Meta:
        model = Employee
        fields = [
            "id",
            "companyId",
            "email",
            "legalId",
            "name",
            "surname",
            "birthDate",
            "hiringDate",
            "state",
            "taxRegime",
            "internalId",
            "costCenter",
            "payrollCompany",
            "grossSalary",
            "modelId",
            "workdayConfiguration",
            "metadata",
        ]
        read_only_fields = ["id"]
        # Uniqueness per company is checked below, against the company of the URL.
        validators: list[Any] = []

    @property
    def company_id(self) -> uuid.UUID | None:
        if self.instance is not None and isinstance(self.instance, Employee):
            return self.instance.company_id
        company_id = self.context.get("company_id")
        return uuid.UUID(str(company_id)) if company_id is not None else None

    def _unique_in_company(self, field: str, value: str, message: str) -> str:
        others = Employee.objects.filter(company_id=self.company_id, **{f"{field}__iexact": value})
        if isinstance(self.instance, Employee):
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(message)
        return value

    def validate_email(self, value: str) -> str:
        return self._unique_in_company("email", value, "An employee with this email already exists in this company.")

    def validate_legalId(self, value: str) -> str:
        return self._unique_in_company(
            "legal_id", value, "An employee with this legal id already exists in this company."
        )


class EmployeeFilterSerializer(serializers.Serializer[dict[str, Any]]):
    """The list filters, validated so a bad value is a 400 with the field named."""

    email = serializers.CharField(required=False, max_length=254)
    legalId = serializers.CharField(required=False, max_length=32)
    internalId = serializers.CharField(required=False, max_length=64)
    state = serializers.ChoiceField(choices=EmployeeState.choices, required=False)
    companyId = serializers.UUIDField(required=False)


class BenefitBagConfigSerializer(serializers.ModelSerializer[BenefitBagConfig]):
    allowedFor = serializers.ListField(source="allowed_for", child=serializers.ChoiceField(BenefitCategory.choices))
    limitAmount = MoneyField("limit_amount_in_cents", "currency")

    class Meta:
        model = BenefitBagConfig
        fields = ["id", "name", "allowedFor", "limitAmount", "period"]


class BenefitModelSerializer(serializers.ModelSerializer[BenefitModel]):
    companyId = serializers.UUIDField(source="company_id", read_only=True)
    benefitBagConfigs = BenefitBagConfigSerializer(source="bag_configs", many=True, read_only=True)

    class Meta:
        model = BenefitModel
        fields = ["id", "companyId", "name", "description", "benefitBagConfigs"]


class ConsumptionSerializer(serializers.ModelSerializer[Consumption]):
    employeeId = serializers.UUIDField(source="employee_id", read_only=True)
    email = serializers.CharField(source="employee.email", read_only=True)
    legalId = serializers.CharField(source="employee.legal_id", read_only=True)
    internalId = serializers.CharField(source="employee.internal_id", read_only=True)
    amount = MoneyField("amount_in_cents", "currency", read_only=True)

    class Meta:
        model = Consumption
        fields = ["id", "employeeId", "email", "legalId", "internalId", "category", "amount", "payroll", "date"]


class ConsumptionQuerySerializer(serializers.Serializer[dict[str, Any]]):
    payroll = serializers.RegexField(PAYROLL_PATTERN, error_messages={"invalid": "A payroll cycle is YYYY-MM."})


class PageSerializer(serializers.Serializer[dict[str, Any]]):
    page = serializers.IntegerField(min_value=1, max_value=1_000_000, default=1)
    pageSize = serializers.IntegerField(min_value=1, max_value=200, default=50)
