"""What every tenancy layer needs to know about the company field, and nothing else (a leaf module).

A tenant model's rows each name their company through the ``company`` foreign key. The guards,
the managers, the models and the admin all ask the same three questions: which field, which
column attribute, is this a tenant model. They also need, in a few audited places, to read a
target row's company whatever the bound tenant: :func:`unscoped_rows` is that read.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import ForeignKey, Model, QuerySet

_M = TypeVar("_M", bound=Model)

#: The field every tenant model has, pointing at ``cobee_django.Company``.
COMPANY_FIELD = "company"
#: Its attribute (and column name): the company's primary key.
COMPANY_ATTNAME = f"{COMPANY_FIELD}_id"

#: The attribute of a tenant row's ``_state`` that holds the company its row has in the database.
SAVED_COMPANY = "cobee_saved_company_id"


def is_tenant_model(model: Any) -> bool:
    """True for concrete, abstract, proxy and multi-table-inherited subclasses of ``TenantModel``."""
    return isinstance(model, type) and getattr(model, "_cobee_tenant_model", False) is True


def company_column(model: type[Model]) -> str:
    """The database column of a (historical) tenant model's ``company`` foreign key."""
    field = model._meta.get_field(COMPANY_FIELD)
    assert isinstance(field, ForeignKey), f"{model._meta.label}.{COMPANY_FIELD} is not a foreign key"
    return str(field.column)


def unscoped_rows(model: type[_M], using: str | None = None) -> QuerySet[_M]:
    """A plain queryset over ``model`` that ignores the tenant: every company's rows.

    A tenant model's managers, its base manager included, are scoped; this is the escape hatch
    the write guards use to learn which company a referenced row belongs to (a scoped lookup
    would find another company's row "missing" and let a cross-company reference through).
    Never hand its rows to a client.
    """
    return QuerySet(model=model, using=using)


__all__: list[str] = []
