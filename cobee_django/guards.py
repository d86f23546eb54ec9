"""Write guards: no row, and no reference, ends up outside the bound tenant.

The rules, applied by ``TenantModel.save()``, ``TenantQuerySet.bulk_create()``,
``bulk_update()`` and ``update()``, many-to-many ``add()`` and a ``pre_save`` check of other models:

- a new row gets the bound company when exactly one is bound; with several bound (a
  corporation) it must name its company;
- a row's company must be one the tenant reaches, when created, saved, updated or moved;
- a foreign key or many-to-many link from a tenant row must point at a row of the *same*
  company; from any other model, at a row the tenant reaches;
- per-company unique constraints are checked first, so a duplicate is a ``ValidationError``.

Inside ``unscoped()`` reachability is not checked, but same-company references still are:
they are a data-integrity rule, not an access rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Expression, Field, Model, UniqueConstraint
from django.db.models.expressions import Combinable

from . import state
from .exceptions import CompanyNotNamed, TenantViolation
from .managers import COMPANY_FIELD, is_tenant_model, scoped_queryset

if TYPE_CHECKING:
    from .managers import TenantQuerySet
    from .state import Tenant

COMPANY_ATTNAME = f"{COMPANY_FIELD}_id"

_bulk_update_checked: ContextVar[bool] = ContextVar("cobee_django_bulk_update_checked", default=False)


def _as_uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    if isinstance(value, Model):
        return _as_uuid(value.pk)
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise TenantViolation(f"{value!r} is not a company id.") from exc


def _check_reachable(model: type[Model], company_id: Any, tenant: Tenant | None) -> None:
    if tenant is not None and not tenant.reaches(company_id):
        raise TenantViolation(
            f"A {model._meta.label} row cannot be written to company {company_id}: the bound tenant does not reach it."
        )


def assign_company(obj: Model, tenant: Tenant | None) -> None:
    """Give a new row the bound company, or check the one it names."""
    company_id = getattr(obj, COMPANY_ATTNAME)
    if company_id is None:
        single = tenant.single_company_id if tenant is not None else None
        if single is None:
            where = "inside unscoped()" if tenant is None else "when several companies are bound"
            raise CompanyNotNamed(f"A new {obj._meta.label} row must name its company {where}.")
        setattr(obj, COMPANY_ATTNAME, single)
        return
    _check_reachable(type(obj), company_id, tenant)


_reference_fields: dict[type[Model], tuple[Field[Any, Any], ...]] = {}
_unique_constraints: dict[type[Model], tuple[UniqueConstraint, ...]] = {}


def tenant_reference_fields(model: type[Model]) -> tuple[Field[Any, Any], ...]:
    """The concrete foreign keys of ``model`` that point at tenant models (not ``company`` itself)."""
    if model not in _reference_fields:
        _reference_fields[model] = _find_reference_fields(model)
    return _reference_fields[model]


def _find_reference_fields(model: type[Model]) -> tuple[Field[Any, Any], ...]:
    return tuple(
        f
        for f in model._meta.concrete_fields
        if f.is_relation
        and (f.many_to_one or f.one_to_one)
        and is_tenant_model(f.related_model)
        and f.name != COMPANY_FIELD
    )


def check_references(
    model: type[Model],
    objs: Sequence[Model],
    tenant: Tenant | None,
    using: str | None,
    fields: Iterable[str] | None = None,
) -> None:
    """Every tenant row ``objs`` point at is in the same company (tenant rows) or reachable (others)."""
    source_is_tenant = is_tenant_model(model)
    if not source_is_tenant and tenant is None:
        return
    wanted = None if fields is None else set(fields)
    for field in tenant_reference_fields(model):
        if wanted is not None and field.name not in wanted and field.attname not in wanted:
            continue
        target_field = field.target_field  # type: ignore[attr-defined]
        known: dict[Any, uuid.UUID | None] = {}
        missing: set[Any] = set()
        for obj in objs:
            value = getattr(obj, field.attname)
            if value is None:
                continue
            cached = field.get_cached_value(obj, None) if field.is_cached(obj) else None  # type: ignore[attr-defined]
            # An instance loaded from the database (through a scoped query) knows its company.
            if cached is not None and cached._state.db is not None and not cached._state.adding:
                known[value] = _as_uuid(getattr(cached, COMPANY_ATTNAME))
            else:
                missing.add(value)
        if missing:
            related: type[Model] = field.related_model  # type: ignore[assignment]
            rows = related._base_manager.using(using).filter(**{f"{target_field.name}__in": missing})
            known.update(
                (key, _as_uuid(company)) for key, company in rows.values_list(target_field.name, COMPANY_ATTNAME)
            )
        for obj in objs:
            value = getattr(obj, field.attname)
            if value is None:
                continue
            target_company = known.get(value)
            if target_company is None:
                continue  # no such row: the database's foreign key constraint answers
            if source_is_tenant:
                if target_company != _as_uuid(getattr(obj, COMPANY_ATTNAME)):
                    raise TenantViolation(f"{model._meta.label}.{field.name} must point at a row of the same company.")
            else:
                _check_reachable(field.related_model, target_company, tenant)  # type: ignore[arg-type]


def company_unique_constraints(model: type[Model]) -> tuple[UniqueConstraint, ...]:
    """Unique constraints (and ``unique_together``) of ``model`` that include its company."""
    if model not in _unique_constraints:
        _unique_constraints[model] = _find_unique_constraints(model)
    return _unique_constraints[model]


def _find_unique_constraints(model: type[Model]) -> tuple[UniqueConstraint, ...]:
    names = {COMPANY_FIELD, COMPANY_ATTNAME}
    found = [c for c in model._meta.constraints if isinstance(c, UniqueConstraint) and names & set(c.fields)]
    for i, fields in enumerate(model._meta.unique_together):
        if names & set(fields):
            found.append(UniqueConstraint(fields=list(fields), name=f"{model._meta.db_table}_unique_together_{i}"))
    return tuple(found)


def _duplicate_exists(model: type[Model], obj: Model, fields: Sequence[str], using: str | None) -> bool:
    lookup = {}
    for name in fields:
        value = getattr(obj, model._meta.get_field(name).attname)  # type: ignore[union-attr]
        if value is None:
            return False  # NULLs never collide
        lookup[name] = value
    rows = model._base_manager.using(using).filter(**lookup)
    if not obj._state.adding and obj.pk is not None:
        rows = rows.exclude(pk=obj.pk)
    found: bool = rows.exists()
    return found


def validate_company_unique(model: type[Model], objs: Sequence[Model], using: str | None) -> None:
    """Raise ``ValidationError`` for a row that would break a per-company unique constraint."""
    constraints = company_unique_constraints(model)
    if not constraints:
        return
    errors: list[ValidationError] = []
    for constraint in constraints:
        simple = bool(constraint.fields) and constraint.condition is None and not constraint.expressions
        seen: set[tuple[Any, ...]] = set()
        for obj in objs:
            if not simple:
                try:
                    constraint.validate(model, obj, using=using or "default")
                except ValidationError as exc:
                    errors.extend(exc.error_list)
                continue
            # The company is one of the fields, so this lookup never crosses companies.
            key = tuple(getattr(obj, model._meta.get_field(f).attname) for f in constraint.fields)  # type: ignore[union-attr]
            if key in seen or _duplicate_exists(model, obj, constraint.fields, using):
                errors.append(ValidationError(obj.unique_error_message(model, tuple(constraint.fields))))
            seen.add(key)
    if errors:
        raise ValidationError({NON_FIELD_ERRORS: errors})


def check_new_rows(model: type[Model], objs: Sequence[Model], using: str | None, *, validate_unique: bool) -> None:
    """The guard of ``bulk_create()``: assign or check companies, references and unique constraints."""
    tenant = state.current_scope()
    for obj in objs:
        assign_company(obj, tenant)
    check_references(model, objs, tenant, using)
    if validate_unique:
        validate_company_unique(model, objs, using)


def check_upsert(
    model: type[Model], unique_fields: Collection[str] | None, update_fields: Collection[str] | None
) -> None:
    """``bulk_create(update_conflicts=True)`` may only collide with rows of the same company.

    ``ON CONFLICT (id) DO UPDATE`` would otherwise overwrite another company's row that happens to
    hold the same key, without any of the checks above seeing it.
    """
    names = {COMPANY_FIELD, COMPANY_ATTNAME}
    if not unique_fields or not names & set(unique_fields):
        raise TenantViolation("bulk_create(update_conflicts=True) needs unique_fields that include the company.")
    if update_fields and names & set(update_fields):
        raise TenantViolation("bulk_create(update_conflicts=True) cannot update the company.")


def check_rows(model: type[Model], objs: Sequence[Model], using: str | None, fields: Iterable[str]) -> None:
    """The guard of ``bulk_update()``: companies reachable, references in the same company."""
    tenant = state.current_scope()
    fields = list(fields)
    for obj in objs:
        _check_reachable(model, getattr(obj, COMPANY_ATTNAME), tenant)
    check_references(model, objs, tenant, using, fields)


def check_save(obj: Model, using: str | None, update_fields: Iterable[str] | None) -> None:
    """The guard of ``TenantModel.save()``."""
    tenant = state.current_scope()
    fields = None if update_fields is None else set(update_fields)
    assign_company(obj, tenant)
    check_references(type(obj), [obj], tenant, using, fields)
    validate_company_unique(type(obj), [obj], using)


def check_delete(obj: Model, using: str | None) -> None:
    """A row is deleted only if the tenant can see it (``Model.delete()`` deletes by primary key)."""
    tenant = state.current_scope()
    if tenant is None:
        return
    if not scoped_queryset(type(obj), using=using).filter(pk=obj.pk).exists():
        raise TenantViolation(f"This {obj._meta.label} row is not one the bound tenant can delete.")


@contextmanager
def bulk_update_checked() -> Iterator[None]:
    """Mark the ``update()`` that ``bulk_update()`` issues as already checked row by row."""
    token = _bulk_update_checked.set(True)
    try:
        yield
    finally:
        _bulk_update_checked.reset(token)


def _plain_value(model: type[Model], name: str, value: Any) -> Any:
    if isinstance(value, (Expression, Combinable)) and not isinstance(value, Model):
        # An F() or Case() could copy any company's id in; we cannot prove it stays inside.
        raise TenantViolation(f"update() cannot set {model._meta.label}.{name} from an expression.")
    return value.pk if isinstance(value, Model) else value


def check_update(queryset: TenantQuerySet[Any], values: Mapping[str, Any]) -> None:
    """The guard of ``TenantQuerySet.update()``: moves stay inside, references in the same company."""
    if _bulk_update_checked.get():
        return
    model = queryset.model
    tenant = state.current_scope()
    new_company: uuid.UUID | None = None
    references: list[tuple[Field[Any, Any], Any]] = []
    for name, value in values.items():
        field = model._meta.get_field(name)
        if field.name == COMPANY_FIELD:
            new_company = _as_uuid(_plain_value(model, name, value))
            if new_company is None:
                raise TenantViolation("A tenant row cannot lose its company.")
            _check_reachable(model, new_company, tenant)
        elif field in tenant_reference_fields(model):
            target = _plain_value(model, name, value)
            if target is not None:
                references.append((field, target))
    for field, target in references:
        related: type[Model] = field.related_model  # type: ignore[assignment]
        target_field = field.target_field  # type: ignore[attr-defined]
        company = _as_uuid(
            related._base_manager.using(queryset.db)
            .filter(**{target_field.name: target})
            .values_list(COMPANY_ATTNAME, flat=True)
            .first()
        )
        if company is None:
            continue  # no such row: the database's foreign key constraint answers
        if new_company is not None:
            if company != new_company:
                raise TenantViolation(f"{model._meta.label}.{field.name} must point at a row of the same company.")
        elif queryset._scoped().exclude(**{COMPANY_ATTNAME: company}).exists():
            raise TenantViolation(f"{model._meta.label}.{field.name} must point at a row of the same company.")


def check_reverse_add(instance: Model, field: Field[Any, Any], objs: Sequence[Any], using: str | None) -> None:
    """``instance.<reverse fk>.add(*objs)``: the rows that will point at ``instance`` may, by the same rules."""
    model: type[Model] = field.model
    tenant = state.current_scope()
    if is_tenant_model(type(instance)):
        _check_reachable(type(instance), getattr(instance, COMPANY_ATTNAME), tenant)
    if not is_tenant_model(model):
        return
    pks = {getattr(obj, "pk", None) for obj in objs}
    if None in pks:
        return  # Django refuses unsaved objects itself
    rows = model._base_manager.using(using).filter(pk__in=pks)
    if is_tenant_model(type(instance)):
        rows = rows.filter(**{COMPANY_ATTNAME: getattr(instance, COMPANY_ATTNAME)})
    elif tenant is not None:
        rows = rows.filter(**{f"{COMPANY_ATTNAME}__in": tenant.company_ids})
    else:
        return
    if rows.count() != len(pks):
        raise TenantViolation(f"{model._meta.label}.{field.name} must point at a row of the same company.")


def check_m2m_add(
    sender: type[Model],
    instance: Model,
    action: str,
    reverse: bool,
    model: type[Model],
    pk_set: set[Any] | None,
    using: str,
    **kwargs: Any,
) -> None:
    """``m2m_changed`` receiver: links from a tenant row go to rows of its company only."""
    if action != "pre_add" or not pk_set:
        return
    source_is_tenant = is_tenant_model(type(instance))
    target_is_tenant = is_tenant_model(model)
    if not (source_is_tenant or target_is_tenant):
        return
    tenant = state.current_scope()
    if source_is_tenant:
        _check_reachable(type(instance), getattr(instance, COMPANY_ATTNAME), tenant)
    if not target_is_tenant:
        return
    targets = model._base_manager.using(using).filter(pk__in=pk_set)
    if source_is_tenant:
        targets = targets.filter(**{COMPANY_ATTNAME: getattr(instance, COMPANY_ATTNAME)})
    elif tenant is not None:
        targets = targets.filter(**{f"{COMPANY_ATTNAME}__in": tenant.company_ids})
    else:
        return
    if targets.count() != len(pk_set):
        raise TenantViolation(f"A {model._meta.label} link must point at rows of the same company.")


def check_other_model_save(
    sender: type[Model], instance: Model, raw: bool, using: str, update_fields: Any, **kwargs: Any
) -> None:
    """``pre_save`` receiver: a model that is not a tenant model may point only at reachable rows."""
    if raw or is_tenant_model(sender) or not tenant_reference_fields(sender):
        return
    tenant = state.current_scope()
    check_references(sender, [instance], tenant, using, update_fields)
