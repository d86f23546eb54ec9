from django.db import models

from cobee_django.models import TenantModel


class Department(TenantModel):
    """TenantModel adds ``company`` (a foreign key to cobee_django.models.Company) and a scoped manager."""

    name = models.CharField(max_length=100)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="payroll_department_name")]

    def __str__(self):
        return self.name


class Employee(TenantModel):
    email = models.EmailField()
    name = models.CharField(max_length=200, blank=True)
    # The write guards refuse a department of another company, whoever saves the row.
    department = models.ForeignKey(Department, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self):
        return self.email
