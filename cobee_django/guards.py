"""Write guards: no row, and no reference, ends up outside the bound tenant.

The rules, applied to every save (a ``pre_save`` receiver: ``save()``, ``create()``, and the raw
saves of ``loaddata``), ``TenantQuerySet.bulk_create()``, ``bulk_update()`` and ``update()``,
reverse foreign keys' and many-to-many ``add()``:

- a new row gets the bound company when exactly one is bound; with several bound (a
  corporation) it must name its company;
- a row's company must be one the tenant reaches, when created, saved, updated or moved;
- a foreign key or many-to-many link from a tenant row must point at a row of the *same*
  company; from any other model, at a row the tenant reaches;
- a row moving to another company takes no reference across companies with it: refused while it
  points at rows of another company, or rows of another company point at it;
- per-company unique constraints are checked first, so a duplicate is a ``ValidationError``.

Lookups of a referenced row's company read through
:func:`~cobee_django.company_field.unscoped_rows`: through a scoped manager another company's row
would look missing, and the reference would pass.

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
from .company_field import COMPANY_ATTNAME, COMPANY_FIELD, SAVED_COMPANY, is_tenant_model, unscoped_rows
from .exceptions import CompanyNotNamed, TenantViolation
from .state import Tenant, Unscoped

if TYPE_CHECKING:
    from .managers import TenantQuerySet

__all__: list[str] = []

_bulk_update_checked: ContextVar[bool] = ContextVar("cobee_django_bulk_update_checked", default=False)


def _limit() -> Tenant | Unscoped:
    """Raises NoTenantBound when nothing is bound; else the tenant the guards check against, or
    ``UNSCOPED`` inside ``unscoped()``, where every write is allowed on purpose (reachability is not
    checked; same-company references still are). The guards' helpers take this value as ``scope``.
    """
    return state.require_scope()


def _as_uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    if isinstance(value, Model):
        return _as_uuid(value.pk)
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise TenantViolation(f"{value!r} is not a company id.") from exc


def _check_reachable(model: type[Model], company_id: Any, scope: Tenant | Unscoped) -> None:
    if isinstance(scope, Tenant) and not scope.reaches(company_id):
        raise TenantViolation(
            f"A {model._meta.label} row cannot be written to company {company_id}: the bound tenant does not reach it."
        )


def assign_company(obj: Model, scope: Tenant | Unscoped) -> None:
    """Give a new row the bound company, or check the one it names."""
    company_id = getattr(obj, COMPANY_ATTNAME)
    if company_id is None:
        single = scope.single_company_id if isinstance(scope, Tenant) else None
        if single is None:
            where = "when several companies are bound" if isinstance(scope, Tenant) else "inside unscoped()"
            raise CompanyNotNamed(f"A new {obj._meta.label} row must name its company {where}.")
        setattr(obj, COMPANY_ATTNAME, single)
        return
    _check_reachable(type(obj), company_id, scope)


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
        and not getattr(f.remote_field, "parent_link", False)  # a multi-table child's link to its own parent row
    )


def check_references(
    model: type[Model],
    objs: Sequence[Model],
    scope: Tenant | Unscoped,
    using: str | None,
    fields: Iterable[str] | None = None,
) -> None:
    """Every tenant row ``objs`` point at is in the same company (tenant rows) or reachable (others)."""
    source_is_tenant = is_tenant_model(model)
    if not source_is_tenant and not isinstance(scope, Tenant):
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
            company = _loaded_company(cached) if cached is not None else None
            if company is not None:
                known[value] = company
            else:
                missing.add(value)
        if missing:
            related: type[Model] = field.related_model  # type: ignore[assignment]
            rows = unscoped_rows(related, using).filter(**{f"{target_field.name}__in": missing})
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
                _check_reachable(field.related_model, target_company, scope)  # type: ignore[arg-type]


def _loaded_company(obj: Model) -> uuid.UUID | None:
    """The company of ``obj``'s row as loaded from the database (or last saved), if ``obj`` still names it.

    Threat: an instance built by hand (even one marked as saved), or one whose company was changed in
    memory, would vouch for any company; only the company a row was read (or written) with is trusted.
    """
    company = _as_uuid(getattr(obj, COMPANY_ATTNAME))
    return company if company == _as_uuid(getattr(obj._state, SAVED_COMPANY, None)) else None


def company_unique_constraints(model: type[Model]) -> tuple[UniqueConstraint, ...]:
    """Unique constraints (and ``unique_together``) of ``model`` that include its company."""
    if model not in _unique_constraints:
        _unique_constraints[model] = _find_unique_constraints(model)
    return _unique_constraints[model]


def _find_unique_constraints(model: type[Model]) -> tuple[UniqueConstraint, ...]:
    names = {COMPANY_FIELD, COMPANY_ATTNAME}
    found: list[UniqueConstraint] = []
    # A multi-table child's row is also its parents' row: their constraints hold for it too.
    for owner in (model, *model._meta.get_parent_list()):
        found.extend(c for c in owner._meta.constraints if isinstance(c, UniqueConstraint) and names & set(c.fields))
        for i, fields in enumerate(owner._meta.unique_together):
            if names & set(fields):
                found.append(UniqueConstraint(fields=list(fields), name=f"{owner._meta.db_table}_unique_together_{i}"))
    return tuple(found)


def _duplicate_exists(model: type[Model], obj: Model, fields: Sequence[str], using: str | None) -> bool:
    lookup = {name: getattr(obj, model._meta.get_field(name).attname) for name in fields}  # type: ignore[union-attr]
    # A parent's constraint (multi-table inheritance) is checked over the parent's rows, not the child's.
    owners: list[Any] = [model._meta.get_field(name).model for name in fields]
    owner: Any = max(owners, key=lambda m: len(m._meta.get_parent_list()))
    rows = unscoped_rows(owner, using).filter(**lookup)
    if obj.pk is not None:
        # Once written, the row with this key is this one (a save naming an existing key updates it, as
        # loaddata does for every row of a fixture loaded again): it is not its own duplicate.
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
            if None in key:
                continue  # NULLs never collide, in the batch or in the table
            if key in seen or _duplicate_exists(model, obj, constraint.fields, using):
                errors.append(ValidationError(obj.unique_error_message(model, tuple(constraint.fields))))
            seen.add(key)
    if errors:
        raise ValidationError({NON_FIELD_ERRORS: errors})


def check_new_rows(model: type[Model], objs: Sequence[Model], using: str | None, *, validate_unique: bool) -> None:
    """The guard of ``bulk_create()``: assign or check companies, references and unique constraints."""
    scope = _limit()
    for obj in objs:
        assign_company(obj, scope)
    check_references(model, objs, scope, using)
    if validate_unique:
        validate_company_unique(model, objs, using)


def check_upsert(unique_fields: Collection[str] | None, update_fields: Collection[str] | None) -> None:
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
    scope = _limit()
    fields = list(fields)
    for obj in objs:
        _check_reachable(model, getattr(obj, COMPANY_ATTNAME), scope)
    if COMPANY_FIELD in fields or COMPANY_ATTNAME in fields:
        moves = {obj.pk: _as_uuid(getattr(obj, COMPANY_ATTNAME)) for obj in objs}
        check_move(model, moves, using, set(fields))  # type: ignore[arg-type]
    check_references(model, objs, scope, using, fields)


#: The one answer to a save that names a primary key no row of the bound tenant has (see pk_refused).
PK_REFUSED = (
    "No {label} row of the bound tenant has this primary key, and new rows get theirs from the database: "
    "leave it unset."
)


def database_assigns_pk(model: type[Model]) -> bool:
    """True when ``model``'s primary key is a sequence the database assigns (``AutoField`` and kin)."""
    pk: Any = model._meta.pk
    return bool(getattr(pk, "db_returning", False)) and not pk.has_default()


def pk_refused(model: type[Model]) -> TenantViolation:
    """The refusal of a chosen sequential primary key: the same whether the key is free or another company's."""
    return TenantViolation(PK_REFUSED.format(label=model._meta.label))


def check_save(obj: Model, using: str | None, update_fields: Iterable[str] | None, *, raw: bool) -> None:
    """The guard of every save of a tenant row (``save()``, ``create()``, raw saves)."""
    scope = _limit()
    fields = None if update_fields is None else set(update_fields)
    assign_company(obj, scope)
    model = type(obj)
    chosen_pk = not raw and obj._state.adding and obj.pk is not None
    if isinstance(scope, Tenant) and chosen_pk and database_assigns_pk(model):
        # Threat: a chosen sequential id would be refused when another company has it and inserted when
        # free, telling which ids exist: refuse both alike (fixtures, raw=True, and unscoped() may choose).
        raise pk_refused(model)
    moved_from = _moving_from(obj, using, raw=raw)
    if moved_from is not None:
        if isinstance(scope, Tenant) and not scope.reaches(moved_from):
            # The same answer as the scoped UPDATE finding nothing (TenantModel._do_update), naming no company.
            raise TenantViolation(f"This {model._meta.label} row belongs to a company the bound tenant does not reach.")
        written = fields if fields is not None else {f.name for f in model._meta.concrete_fields}
        check_move(model, {obj.pk: _as_uuid(getattr(obj, COMPANY_ATTNAME))}, using, written)  # type: ignore[dict-item]
    check_references(model, [obj], scope, using, fields)
    validate_company_unique(model, [obj], using)


def _moving_from(obj: Model, using: str | None, *, raw: bool) -> uuid.UUID | None:
    """The company ``obj``'s row has in the database when this save moves it to another, else ``None``."""
    if obj.pk is None:
        return None
    if _loaded_company(obj) is not None:
        return None  # loaded (or last saved) with this company
    pk_field: Any = obj._meta.pk
    if obj._state.adding and not raw and pk_field.has_default():
        return None  # Django inserts a new row here, never updates one (a taken key fails the insert)
    current = _as_uuid(
        unscoped_rows(type(obj), using).filter(pk=obj.pk).values_list(COMPANY_ATTNAME, flat=True).first()
    )
    return current if current is not None and current != _as_uuid(getattr(obj, COMPANY_ATTNAME)) else None


def _companies(model: type[Model], key: str, values: Iterable[Any], using: str | None) -> dict[Any, uuid.UUID]:
    """The company of each row of ``model`` whose ``key`` is one of ``values`` (every company's rows)."""
    rows = unscoped_rows(model, using).filter(**{f"{key}__in": set(values)}).values_list(key, COMPANY_ATTNAME)
    return {value: _as_uuid(company) for value, company in rows}  # type: ignore[misc]


def _row_family(model: type[Model]) -> list[type[Model]]:
    """The concrete models that share a row of ``model``: the one holding the company, its multi-table
    parents and children (their primary keys are equal, and they move together)."""
    root: type[Model] = model._meta.get_field(COMPANY_FIELD).model._meta.concrete_model  # type: ignore[assignment]
    family: list[type[Model]] = [*root._meta.get_parent_list()]
    todo = [root]
    while todo:
        current = todo.pop()
        if current._meta.concrete_model is current and current not in family:
            family.append(current)
        todo.extend(current.__subclasses__())
    return family


def check_move(model: type[Model], moves: Mapping[Any, uuid.UUID], using: str | None, written: Collection[str]) -> None:
    """Rows of ``model`` (primary key to new company) change company: no reference may cross afterwards.

    A row moving to another company would leave behind, in its old company, the rows it points at
    and the rows pointing at it: the new company, deleting "its" row, would then cascade into the
    old company's rows. ``written`` names the fields this write sets (checked as references already).
    A multi-table child's row moves with its parent's, so the whole family is checked.
    """
    if not moves:
        return
    family = _row_family(model)
    pks = list(moves)

    def after(target: type[Model], key: Any, company: uuid.UUID) -> uuid.UUID:
        """The company a row will have once the write is done."""
        return moves[key] if target._meta.concrete_model in family and key in moves else company

    def refuse(what: str) -> None:
        raise TenantViolation(
            f"{model._meta.label} rows cannot change company while {what}: "
            "a reference between tenant rows would cross companies. Move or unlink those rows first."
        )

    for member in family:
        for field in tenant_reference_fields(member):
            if field.model is not member or field.name in written or field.attname in written:
                continue
            target_field = field.target_field  # type: ignore[attr-defined]
            pairs = list(
                unscoped_rows(member, using)
                .filter(pk__in=pks, **{f"{field.attname}__isnull": False})
                .values_list("pk", field.attname)
            )
            related: type[Model] = field.related_model  # type: ignore[assignment]
            companies = _companies(related, target_field.attname, (t for _, t in pairs), using)
            for pk, target in pairs:
                if target in companies and after(related, target, companies[target]) != moves[pk]:
                    refuse(f"their {field.name} is a row of another company")
        for rel in member._meta.related_objects:
            referrer: type[Model] = rel.related_model
            if rel.model is not member or not is_tenant_model(referrer) or rel.field.name == COMPANY_FIELD:
                continue
            if rel.many_to_many:
                _check_m2m_move(rel.field, reverse=True, pks=pks, after=after, moves=moves, using=using, refuse=refuse)
                continue
            # (referrer column, this model's column) per column of the link: one for a foreign key, several
            # for a multi-column ForeignObject.
            link = [(local.attname, remote.attname) for local, remote in rel.field.related_fields]
            if rel.field.remote_field.parent_link or (COMPANY_ATTNAME, COMPANY_ATTNAME) in link:
                # A multi-table child is part of the family, checked as such; a link joined on the company
                # too ends when the row moves, it cannot cross companies.
                continue
            local_names = [local for local, _ in link]
            remote_names = [remote for _, remote in link]
            to_pk = {
                tuple(key): pk
                for pk, *key in unscoped_rows(member, using).filter(pk__in=pks).values_list("pk", *remote_names)
            }
            if not to_pk:
                continue
            # The rows whose first column matches; the whole key (one column for a foreign key) is matched below.
            pointing = {f"{local_names[0]}__in": {key[0] for key in to_pk}}
            rows = unscoped_rows(referrer, using).filter(**pointing).values_list("pk", COMPANY_ATTNAME, *local_names)
            for rpk, company, *key in rows:
                moved_pk = to_pk.get(tuple(key))
                if moved_pk is not None and after(referrer, rpk, _as_uuid(company)) != moves[moved_pk]:  # type: ignore[arg-type]
                    refuse(f"{referrer._meta.label} rows of another company point at them ({rel.field.name})")
        for m2m in member._meta.local_many_to_many:
            if is_tenant_model(m2m.related_model):
                _check_m2m_move(m2m, reverse=False, pks=pks, after=after, moves=moves, using=using, refuse=refuse)


def _check_m2m_move(
    field: Any,
    *,
    reverse: bool,
    pks: list[Any],
    after: Any,
    moves: Mapping[Any, uuid.UUID],
    using: str | None,
    refuse: Any,
) -> None:
    """The links of a many-to-many ``field`` between moving rows and rows of other companies."""
    through = field.remote_field.through
    source = through._meta.get_field(field.m2m_field_name()).attname
    target = through._meta.get_field(field.m2m_reverse_field_name()).attname
    moving, other = (target, source) if reverse else (source, target)
    other_model: type[Model] = field.model if reverse else field.related_model
    pairs = list(unscoped_rows(through, using).filter(**{f"{moving}__in": pks}).values_list(moving, other))
    companies = _companies(other_model, "pk", (o for _, o in pairs), using)
    for pk, linked in pairs:
        if linked in companies and after(other_model, linked, companies[linked]) != moves[pk]:
            refuse(f"they are linked ({field.name}) with {other_model._meta.label} rows of another company")


def check_delete(obj: Model, using: str | None) -> None:
    """A row is deleted only if the tenant can see it (``Model.delete()`` deletes by primary key)."""
    scope = _limit()
    if not isinstance(scope, Tenant):
        return
    rows = unscoped_rows(type(obj), using).filter(pk=obj.pk, **{f"{COMPANY_ATTNAME}__in": scope.company_ids})
    if not rows.exists():
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
    scope = _limit()
    new_company: uuid.UUID | None = None
    references: list[tuple[Field[Any, Any], Any]] = []
    for name, value in values.items():
        field = model._meta.get_field(name)
        if field.name == COMPANY_FIELD:
            new_company = _as_uuid(_plain_value(model, name, value))
            if new_company is None:
                raise TenantViolation("A tenant row cannot lose its company.")
            _check_reachable(model, new_company, scope)
        elif field in tenant_reference_fields(model):
            target = _plain_value(model, name, value)
            if target is not None:
                references.append((field, target))
    for field, target in references:
        related: type[Model] = field.related_model  # type: ignore[assignment]
        target_field = field.target_field  # type: ignore[attr-defined]
        company = _as_uuid(
            unscoped_rows(related, queryset.db)
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
    if new_company is not None:
        moving = queryset._scoped().exclude(**{COMPANY_ATTNAME: new_company}).values_list("pk", flat=True)
        check_move(model, dict.fromkeys(moving, new_company), queryset.db, set(values))


def _check_links(source: Model, targets: type[Model], pks: Collection[Any], using: str | None, what: str) -> None:
    """Rows of ``targets`` with primary keys ``pks`` are about to be linked with ``source``.

    The one rule of ``add()`` on a reverse foreign key and on a many-to-many relation: a tenant
    ``source`` must be reachable and every tenant target in its company; a ``source`` that is not a
    tenant row may be linked only with rows the tenant reaches.
    """
    source_is_tenant = is_tenant_model(type(source))
    scope = _limit()
    if source_is_tenant:
        _check_reachable(type(source), getattr(source, COMPANY_ATTNAME), scope)
    if not is_tenant_model(targets) or not pks:
        return
    rows = unscoped_rows(targets, using).filter(pk__in=pks)
    if source_is_tenant:
        rows = rows.filter(**{COMPANY_ATTNAME: getattr(source, COMPANY_ATTNAME)})
    elif isinstance(scope, Tenant):
        rows = rows.filter(**{f"{COMPANY_ATTNAME}__in": scope.company_ids})
    else:
        return
    if rows.count() != len(set(pks)):
        raise TenantViolation(f"{what} must point at rows of the same company.")


def check_reverse_add(instance: Model, field: Field[Any, Any], objs: Sequence[Any], using: str | None) -> None:
    """``instance.<reverse fk>.add(*objs)``: the rows that will point at ``instance`` may, by the same rules."""
    pks = {getattr(obj, "pk", None) for obj in objs}
    if None in pks:
        pks.discard(None)  # Django refuses unsaved objects itself
    _check_links(instance, field.model, pks, using, f"{field.model._meta.label}.{field.name}")


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
    if not (is_tenant_model(type(instance)) or is_tenant_model(model)):
        return
    _check_links(instance, model, pk_set, using, f"A {model._meta.label} link")


def check_any_save(
    sender: type[Model], instance: Model, raw: bool, using: str, update_fields: Any, **kwargs: Any
) -> None:
    """``pre_save`` receiver: every save, raw ones included (``loaddata`` saves with ``raw=True``,
    past ``Model.save()``), stays inside the bound tenant.

    A tenant row goes through :func:`check_save`; a row of another model may point only at
    tenant rows the tenant reaches.
    """
    if is_tenant_model(sender):
        check_save(instance, using, update_fields, raw=raw)
    elif tenant_reference_fields(sender):
        check_references(sender, [instance], _limit(), using, update_fields)
