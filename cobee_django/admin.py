"""The tenant-aware admin: the registry's own admins, and the base classes for tenant models.

Add :class:`TenantAdminMixin` (or subclass :class:`TenantModelAdmin`) to the ``ModelAdmin`` of a
model with a ``company`` foreign key, and every page of that admin follows the company (or whole
corporation) chosen in the header's switcher: changelists and their counts, search, list filter
choices, the change, add, delete and history views, inlines, foreign-key dropdowns, raw-id and
autocomplete lookups, and bulk actions. Another company's object answers 404, new objects get the
active company, and a staff user who may manage no company gets a 403 page that says so.

The tenant middleware binds the same choice for the whole request, so ``TenantModel`` managers
scope every query too; the mixin filters explicitly as well, so the rules above also hold for a
model that has a foreign key to ``Company`` (named by ``tenant_field``) without being a ``TenantModel``.

Importing this module (Django's admin autodiscovery does) also makes every admin site's "view on
site" URL (``admin:view_on_site``) load objects through the same scoping: see :func:`_view_on_site`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.sites import AdminSite
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core import checks
from django.core.checks import CheckMessage
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern
from django.utils import timezone

from . import audit, staff
from .exceptions import TenantError
from .models import Company, Corporation, StaffGrant, StaffIdentity, _GrantSource, _MembershipSource

# django-stubs makes the admin classes generic; at run time they are not subscriptable.
if TYPE_CHECKING:
    _AdminBase = admin.options.BaseModelAdmin[Any]
    _ModelAdmin = admin.ModelAdmin[Any]
    _ModelAdminBase = admin.ModelAdmin[Any]
    _TabularInline = admin.TabularInline[Any, Any]
    _StackedInline = admin.StackedInline[Any, Any]
else:
    _AdminBase = object
    _ModelAdminBase = object
    _ModelAdmin = admin.ModelAdmin
    _TabularInline = admin.TabularInline
    _StackedInline = admin.StackedInline

__all__ = [
    "SafeModelChoiceField",
    "SafeModelMultipleChoiceField",
    "SuperuserOnlyAdmin",
    "TenantAdminMixin",
    "TenantInlineMixin",
    "TenantModelAdmin",
    "TenantStackedInline",
    "TenantTabularInline",
]

#: Shown on the 403 page of tenant models to a staff user who may manage no company.
NO_COMPANY_MESSAGE = (
    "Your account may not manage any company yet, so this page is closed to you. "
    "Ask a superuser to grant you a company or a corporation."
)


def _tenant_field_of(model: type[models.Model], name: str) -> models.ForeignKey[Any, Any] | None:
    """The foreign key to ``Company`` called ``name`` on ``model``, if it has one."""
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    if isinstance(field, models.ForeignKey) and issubclass(field.related_model, Company):
        return field
    return None


def _tenant_fields(model: type[models.Model], site: AdminSite | None = None) -> list[str]:
    """The foreign keys to ``Company`` that say which company a row of ``model`` belongs to.

    The ``tenant_field`` of the tenant admin registered for ``model`` on ``site``, else ``company``,
    else every foreign key to ``Company`` the model has (a row must be in the active companies
    through all of them: a model whose company is ambiguous fails closed). Empty: not a tenant row.
    """
    registered = site._registry.get(model) if site is not None else None
    named = getattr(registered, "tenant_field", None)
    for name in (named, "company"):
        if isinstance(name, str) and _tenant_field_of(model, name) is not None:
            return [name]
    return [
        field.name
        for field in model._meta.concrete_fields
        if isinstance(field, models.ForeignKey) and issubclass(field.related_model, Company)
    ]


def _single_tenant_field(
    model: type[models.Model], site: AdminSite | None, preferred: str | None = None
) -> models.ForeignKey[Any, Any] | None:
    """The one foreign key to ``Company`` of ``model``: ``preferred`` if it is one, else :func:`_tenant_fields`'."""
    if preferred is not None and (field := _tenant_field_of(model, preferred)) is not None:
        return field
    names = _tenant_fields(model, site)
    return _tenant_field_of(model, names[0]) if len(names) == 1 else None


def _in_companies(queryset: QuerySet[Any], fields: list[str], company_ids: Collection[uuid.UUID]) -> QuerySet[Any]:
    """``queryset`` limited to rows whose every field of ``fields`` names one of ``company_ids``."""
    scoped: QuerySet[Any] = queryset
    if fields:
        scoped = (
            queryset.filter(Q(*(Q(**{f"{name}__in": company_ids}) for name in fields)))
            if company_ids
            else queryset.none()
        )
    return scoped


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parses(field: models.Field[Any, Any], value: object) -> bool:
    """Whether ``value`` is a well-formed value of ``field`` (its type, and its database range)."""
    try:
        parsed = field.to_python(value)
        field.run_validators(parsed)
    except (ValidationError, ValueError, TypeError):
        return False
    # Django before 5.0 knows no integer range on SQLite: no database stores more than 64 bits.
    return not isinstance(parsed, int) or _INT64_MIN <= parsed <= _INT64_MAX


class _MalformedValueSafeAutocomplete:
    """An autocomplete widget that redraws a form whose posted id is malformed (Django's raises: a 500)."""

    field: Any

    def optgroups(
        self, name: str, value: Sequence[str], attr: dict[str, Any] | None = None
    ) -> list[tuple[str | None, list[dict[str, Any]], int | None]]:
        remote = self.field.remote_field
        opts = remote.model._meta
        target = opts.get_field(getattr(remote, "field_name", None) or opts.pk.name)
        # The form already says "Select a valid choice"; only the redrawn widget must not query it.
        groups: list[tuple[str | None, list[dict[str, Any]], int | None]]
        groups = super().optgroups(name, [v for v in value if _parses(target, v)], attr)  # type: ignore[misc]
        return groups


class _SafeAutocompleteSelect(_MalformedValueSafeAutocomplete, AutocompleteSelect):
    """``AutocompleteSelect`` that tolerates a malformed posted id."""


class _SafeAutocompleteSelectMultiple(_MalformedValueSafeAutocomplete, AutocompleteSelectMultiple):
    """``AutocompleteSelectMultiple`` that tolerates malformed posted ids."""


def _target_field(queryset: QuerySet[Any] | None, to_field_name: str | None) -> models.Field[Any, Any] | None:
    if queryset is None:
        return None
    opts = queryset.model._meta
    field: models.Field[Any, Any] = opts.get_field(to_field_name) if to_field_name else opts.pk
    return field


class SafeModelChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    """``ModelChoiceField`` refusing an id out of its column's range before querying with it.

    Django before 5.0 sends such an integer to the database, which fails (a 500) instead of the form
    saying "Select a valid choice".
    """

    def to_python(self, value: Any) -> Any:
        target = _target_field(self.queryset, self.to_field_name)
        if target is not None and value not in self.empty_values and not _parses(target, value):
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice", params={"value": value})
        return super().to_python(value)


class SafeModelMultipleChoiceField(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    """``ModelMultipleChoiceField`` refusing ids out of their column's range before querying with them.

    Django's queries ``pk__in`` with every posted id, and an integer past the database's range
    fails there (a 500) instead of being an invalid choice.
    """

    def _check_values(self, value: Any) -> Any:
        target = _target_field(self.queryset, self.to_field_name)
        if target is not None and isinstance(value, (list, tuple)):
            for pk in value:
                if not _parses(target, pk):
                    raise ValidationError(
                        self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": pk}
                    )
        return super()._check_values(value)  # type: ignore[misc]  # private in the stubs


class _SafeAutocompleteAdminMixin(_AdminBase):
    """Autocomplete fields use the widgets above, relations the fields above: a malformed id is a
    form error, never a 500."""

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField[Any] | None:
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = _SafeAutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        kwargs.setdefault("form_class", SafeModelChoiceField)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(
        self, db_field: models.ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> forms.ModelMultipleChoiceField[Any] | None:
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = _SafeAutocompleteSelectMultiple(db_field, self.admin_site, using=kwargs.get("using"))
        kwargs.setdefault("form_class", SafeModelMultipleChoiceField)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


def _wrong_tenant_field(admin_object: Any, otherwise: str) -> CheckMessage:
    return checks.Error(
        f"{type(admin_object).__name__}.tenant_field is {admin_object.tenant_field!r}, which is not a foreign key "
        f"to cobee_django.Company on {admin_object.model._meta.label}.",
        hint=f"Point tenant_field at the model's foreign key to Company, or {otherwise}.",
        obj=type(admin_object),
        id="cobee_django.E030",
    )


class _TenantFieldsMixin(_SafeAutocompleteAdminMixin):
    """What model admins and inlines share: the scoped queryset and the scoped form fields."""

    #: The name of the foreign key to ``Company`` on the administered model.
    tenant_field: str = "company"

    def get_tenant_choice(self, request: HttpRequest) -> staff.TenantChoice | None:
        """The company or corporation ``request``'s user works on (``None``: no company at all)."""
        return staff.active_choice(request)

    def get_tenant_company_ids(self, request: HttpRequest) -> frozenset[uuid.UUID]:
        choice = self.get_tenant_choice(request)
        return choice.company_ids if choice is not None else frozenset()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        return self.scope_queryset(request, queryset)

    def scope_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """``queryset`` restricted to the active companies (nothing at all without a choice)."""
        company_ids = self.get_tenant_company_ids(request)
        scoped: QuerySet[Any] = queryset
        if not company_ids:
            scoped = queryset.none()
        elif _tenant_field_of(queryset.model, self.tenant_field) is not None:
            scoped = queryset.filter(**{f"{self.tenant_field}__in": company_ids})
        return scoped

    def _scope_related(self, db_field: models.Field[Any, Any], request: HttpRequest, kwargs: dict[str, Any]) -> None:
        """Limit the choices of a relation to the active companies' rows."""
        related = db_field.related_model
        if not isinstance(related, type):
            return
        company_ids = self.get_tenant_company_ids(request)
        queryset = kwargs.get("queryset")
        if queryset is None:
            queryset = self.get_field_queryset(None, db_field, request)  # type: ignore[arg-type]
        if queryset is None:
            queryset = related._default_manager.all()
        if issubclass(related, Company):
            # Never offer (nor accept) a company outside the tenant.
            kwargs["queryset"] = queryset.filter(id__in=company_ids)
        else:
            kwargs["queryset"] = _in_companies(queryset, _tenant_fields(related, self.admin_site), company_ids)

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField[Any] | None:
        self._scope_related(db_field, request, kwargs)
        if db_field.name == self.tenant_field:
            choice = self.get_tenant_choice(request)
            if choice is not None and choice.single_company_id is not None:
                # One company active: shown, fixed, and never taken from the POST.
                kwargs["disabled"] = True
                kwargs["initial"] = choice.single_company_id
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(
        self, db_field: models.ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> forms.ModelMultipleChoiceField[Any] | None:
        self._scope_related(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


#: Shown on the changelist when a bulk action or list_editable rows name ids that cannot be this list's.
MALFORMED_SELECTION_MESSAGE = "The posted rows are not items of this list: nothing was done."


class _SafeChangelistMixin(_ModelAdminBase):
    """Malformed ids posted to the changelist (a bulk action's selection, list_editable rows) are
    refused like other tampered input instead of reaching the database (Django's answers 500)."""

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Any], *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        if not all(_parses(self.opts.pk, value) for value in selected):
            self.message_user(request, MALFORMED_SELECTION_MESSAGE, messages.WARNING)
            return None
        return super().response_action(request, queryset, *args, **kwargs)

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        if any("\x00" in value for values in request.GET.lists() for value in values[1]):
            # A NUL in a filter or search value: PostgreSQL refuses the query; Django's answer to bad
            # lookup parameters (a redirect to ?e=1) instead of a 500.
            raise IncorrectLookupParameters("A lookup parameter holds a NUL character.")
        return super().get_changelist_instance(request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        if "\x00" in search_term:
            # No stored text holds a NUL, and PostgreSQL refuses the query (the changelist and autocomplete).
            return queryset.none(), False
        found: tuple[QuerySet[Any], bool] = super().get_search_results(request, queryset, search_term)
        return found

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "POST" and "_save" in request.POST and self.list_editable:
            prefix = self.get_changelist_formset(request).get_default_prefix()
            if not all(_parses(self.opts.pk, pk) for pk in self._get_edited_object_pks(request, prefix)):
                # list_editable rows naming no row of this list (Django's own test lets out-of-range ids through).
                self.message_user(request, MALFORMED_SELECTION_MESSAGE, messages.WARNING)
                return HttpResponseRedirect(request.get_full_path())
        return super().changelist_view(request, extra_context)


class TenantAdminMixin(_TenantFieldsMixin, _SafeChangelistMixin):
    """Makes a ``ModelAdmin`` follow the admin's active company. Put it before ``ModelAdmin``.

    Knobs: ``tenant_field`` (default ``"company"``), the foreign key to ``Company``.
    Hooks: ``get_tenant_choice(request)``, ``scope_queryset(request, queryset)``,
    ``no_tenant_response(request)``.
    """

    no_tenant_template = "admin/cobee_django/no_tenant.html"

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        errors: list[CheckMessage] = list(super().check(**kwargs))
        if _tenant_field_of(self.model, self.tenant_field) is None:
            # Without the field the mixin could not filter: refuse at check time rather than show all rows.
            errors.append(_wrong_tenant_field(self, "drop TenantAdminMixin"))
        return errors

    def no_tenant_response(self, request: HttpRequest) -> HttpResponse:
        """The 403 page for a staff user who may manage no company."""
        audit.deny(request, audit.Denial.NO_TENANT)
        site = self.admin_site
        context = {
            **site.each_context(request),
            "title": "No company to manage",
            "message": NO_COMPANY_MESSAGE,
            "opts": self.opts,
        }
        return TemplateResponse(request, self.no_tenant_template, context, status=403)

    def _denied(self, request: HttpRequest) -> HttpResponse | None:
        if self.get_tenant_choice(request) is None:
            return self.no_tenant_response(request)
        return None

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return self._denied(request) or super().changelist_view(request, extra_context)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return self._denied(request) or super().add_view(request, form_url, extra_context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return self._denied(request) or super().change_view(request, object_id, form_url, extra_context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return self._denied(request) or super().delete_view(request, object_id, extra_context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return self._denied(request) or super().history_view(request, object_id, extra_context)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        """Another company's object (or a missing one) is a 404, not a redirect that confirms it exists."""
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object in the active company.")
        return obj

    def get_list_filter(self, request: HttpRequest) -> Any:
        """Relation filters list only values found in the active companies' rows."""
        filters = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str):
                try:
                    field = get_fields_from_path(self.model, entry)[-1]
                except (FieldDoesNotExist, admin.utils.NotRelationField):
                    field = None
                if field is not None and field.is_relation:
                    entry = (entry, RelatedOnlyFieldListFilter)
            filters.append(entry)
        return filters

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial: dict[str, Any] = super().get_changeform_initial_data(request)
        # The company of a new object comes from the switcher, never from the URL.
        initial.pop(self.tenant_field, None)
        choice = self.get_tenant_choice(request)
        if choice is not None and choice.single_company_id is not None:
            initial[self.tenant_field] = choice.single_company_id
        return initial

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        self.assign_tenant(request, obj)
        super().save_model(request, obj, form, change)

    def assign_tenant(self, request: HttpRequest, obj: Any, company_id: uuid.UUID | None = None) -> None:
        """Give a new ``obj`` the active company; refuse an object outside the active companies."""
        field = _tenant_field_of(type(obj), self.tenant_field)
        if field is None:
            return
        attname = field.attname
        choice = self.get_tenant_choice(request)
        if choice is None:
            raise PermissionDenied(NO_COMPANY_MESSAGE)
        if getattr(obj, attname) is None:
            setattr(obj, attname, company_id or choice.single_company_id)
        # Forms already limit the field; this guards admins that build objects another way.
        if getattr(obj, attname) not in choice.company_ids:
            raise PermissionDenied("That company is not one you are managing now.")

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Inline objects get the company of the object they hang from."""
        parent_field = _tenant_field_of(type(form.instance), self.tenant_field)
        parent_company = getattr(form.instance, parent_field.attname) if parent_field is not None else None
        # The inline's own tenant_field (TenantInlineMixin), else the inline model's foreign key to Company.
        tenant = _single_tenant_field(formset.model, self.admin_site, getattr(formset, "tenant_field", None))
        for inline_form in formset.forms:
            instance = inline_form.instance
            if instance.pk is None and tenant is not None and getattr(instance, tenant.attname) is None:
                setattr(instance, tenant.attname, parent_company)
        super().save_formset(request, form, formset, change)


class TenantModelAdmin(TenantAdminMixin, _ModelAdmin):
    """A ``ModelAdmin`` that follows the active company (see :class:`TenantAdminMixin`)."""


class TenantInlineMixin(_TenantFieldsMixin):
    """Scopes an inline's rows and its form fields to the active companies.

    The company of new inline rows is the parent object's; the inline form does not show it.
    An inline of a model with a foreign key to ``Company`` must name it in ``tenant_field``
    (``cobee_django.E030``); an inline of a model without one shows the rows of its (scoped) parent.
    """

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        errors: list[CheckMessage] = list(super().check(**kwargs))
        if _tenant_field_of(self.model, self.tenant_field) is None and _tenant_fields(self.model):
            # The rows have a company the inline would neither filter on nor set.
            errors.append(_wrong_tenant_field(self, "use a plain inline (whose rows do not follow the active company)"))
        return errors

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        exclude = list(super().get_exclude(request, obj) or [])
        if _tenant_field_of(self.model, self.tenant_field) is not None:
            exclude.append(self.tenant_field)
        return exclude

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)  # type: ignore[misc]
        inline_tenant_field = self.tenant_field
        own = _tenant_field_of(self.model, inline_tenant_field)
        # The parent's company is read through the parent admin's tenant_field (or its model's).
        parent = _single_tenant_field(self.parent_model, self.admin_site)  # type: ignore[attr-defined]

        class TenantInlineFormSet(formset):  # type: ignore[misc, valid-type]
            #: Read by TenantAdminMixin.save_formset.
            tenant_field = inline_tenant_field

            def _construct_form(self, i: int, **form_kwargs: Any) -> Any:
                form = super()._construct_form(i, **form_kwargs)
                # The parent's company, before validation, so per-company unique rules can run.
                if own is not None and parent is not None and getattr(form.instance, own.attname, None) is None:
                    setattr(form.instance, own.attname, getattr(self.instance, parent.attname, None))
                return form

        return TenantInlineFormSet


class TenantTabularInline(TenantInlineMixin, _TabularInline):
    """A tabular inline scoped to the active companies."""


class TenantStackedInline(TenantInlineMixin, _StackedInline):
    """A stacked inline scoped to the active companies."""


#: The one answer of "view on site" for an object the user may not open, whether it exists or not.
VIEW_ON_SITE_NOT_FOUND = "No such object in the active company."


def _reachable(request: HttpRequest, site: AdminSite, content_type_id: str, object_id: str) -> bool:
    """Whether ``request``'s user may open that object on ``site``, loaded through the scoped queryset."""
    from django.contrib.contenttypes.models import ContentType

    try:
        model = ContentType.objects.get_for_id(int(content_type_id)).model_class()
        if model is None:
            return False
        model_admin = site._registry.get(model)
        if model_admin is not None:
            if not model_admin.has_view_or_change_permission(request):
                return False
            queryset = model_admin.get_queryset(request)
        else:
            queryset = model._default_manager.all()
        # Also for models whose admin does not scope (or that have none): their company must be active.
        choice = staff.active_choice(request)
        company_ids = choice.company_ids if choice is not None else frozenset()
        return bool(_in_companies(queryset, _tenant_fields(model, site), company_ids).filter(pk=object_id).exists())
    except (ContentType.DoesNotExist, ValueError, TypeError, ValidationError, TenantError):
        # An unknown type, a malformed id, or no tenant bound: nothing to open.
        return False


def _view_on_site(request: HttpRequest, content_type_id: str, object_id: str, *, site: AdminSite) -> HttpResponse:
    """The admin's "view on site" redirect (``admin:view_on_site``), for objects the user may open only.

    Django's own view loads the object through ``_base_manager``, unscoped: its redirect for
    another company's id, against a 404 for a missing one, would confirm which ids exist
    elsewhere. Here both are the same 404; the redirect itself is still Django's.
    """
    from django.contrib.contenttypes.views import shortcut

    if not _reachable(request, site, content_type_id, object_id):
        raise Http404(VIEW_ON_SITE_NOT_FOUND)
    try:
        return shortcut(request, content_type_id, object_id)
    except (Http404, TenantError):
        # No get_absolute_url(), or the object went away meanwhile: the same answer as above.
        raise Http404(VIEW_ON_SITE_NOT_FOUND) from None


def _with_tenant_view_on_site(site: AdminSite, pattern: Any) -> Any:
    if not isinstance(pattern, URLPattern) or pattern.name != "view_on_site":
        return pattern
    view = site.admin_view(functools.partial(_view_on_site, site=site))
    view.admin_site = site  # type: ignore[attr-defined]  # as Django's own admin views carry
    view.tenant_aware = True  # type: ignore[attr-defined]
    return URLPattern(pattern.pattern, view, pattern.default_args, pattern.name)


def _install_view_on_site() -> None:
    """Make every admin site serve :func:`_view_on_site` at its ``r/`` URL (idempotent).

    Done for every ``AdminSite`` (the default one and any project's own), so no project can
    forget it; the rest of each site's URLs is untouched.
    """
    original: Callable[[AdminSite], list[Any]] = AdminSite.get_urls
    if getattr(original, "_cobee_view_on_site", False):
        return

    @functools.wraps(original)
    def get_urls(self: AdminSite) -> list[Any]:
        return [_with_tenant_view_on_site(self, pattern) for pattern in original(self)]

    get_urls._cobee_view_on_site = True  # type: ignore[attr-defined]
    AdminSite.get_urls = get_urls  # type: ignore[method-assign]


_install_view_on_site()


class SuperuserOnlyAdmin(_SafeAutocompleteAdminMixin, _SafeChangelistMixin, _ModelAdmin):
    """The tenant registry and the grants decide who reaches what: only superusers may see or edit them."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)


def _asserted_by_admin(company: Company) -> None:
    """Stamp ``company``'s corporation link as the admin's, now, if this save sets it (a new row, or a move).

    Threat: a token issued before the edit, or a token naming the company's old corporation,
    must not undo what a superuser decided (see :func:`cobee_django.membership.record_membership`).
    """
    if not Company.objects.filter(pk=company.pk, corporation_id=company.corporation_id).exists():
        company.membership_source = _MembershipSource.ADMIN  # type: ignore[assignment]  # stubs: (value, label)
        company.membership_asserted_at = timezone.now()


class _CompanyInline(_TabularInline):
    model = Company
    fields = ["id", "name", "membership_source"]
    readonly_fields = ["membership_source"]
    extra = 0
    show_change_link = True


@admin.register(Corporation)
class _CorporationAdmin(SuperuserOnlyAdmin):
    list_display = ["name", "id"]
    search_fields = ["name", "=id"]
    inlines = [_CompanyInline]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is Company:
            # A company added here joins this corporation: the admin's link, asserted now.
            for inline_form in formset.forms:
                if inline_form.has_changed() and inline_form not in formset.deleted_forms:
                    _asserted_by_admin(inline_form.instance)
        super().save_formset(request, form, formset, change)

    def delete_model(self, request: HttpRequest, obj: Corporation) -> None:
        self.delete_queryset(request, Corporation.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        # Its companies are left without a corporation, by the admin, now: an older token naming
        # the deleted corporation must not bring it back with its companies.
        with transaction.atomic():
            Company.objects.filter(corporation__in=queryset).update(
                membership_source=_MembershipSource.ADMIN, membership_asserted_at=timezone.now()
            )
            super().delete_queryset(request, queryset)


@admin.register(Company)
class _CompanyAdmin(SuperuserOnlyAdmin):
    list_display = ["name", "id", "corporation", "membership_source"]
    list_filter = ["membership_source", "corporation"]
    search_fields = ["name", "=id", "corporation__name"]
    autocomplete_fields = ["corporation"]
    readonly_fields = ["membership_source", "membership_asserted_at"]

    def save_model(self, request: HttpRequest, obj: Company, form: Any, change: bool) -> None:
        # A company created here, or moved here, is linked by the admin, now.
        _asserted_by_admin(obj)
        super().save_model(request, obj, form, change)


@admin.register(StaffGrant)
class _StaffGrantAdmin(SuperuserOnlyAdmin):
    list_display = ["user", "company", "corporation", "source"]
    list_filter = ["source"]
    search_fields = ["user__username", "user__email", "company__name", "corporation__name", "=company__id"]
    raw_id_fields = ["user"]
    autocomplete_fields = ["company", "corporation"]
    readonly_fields = ["source"]

    def save_model(self, request: HttpRequest, obj: StaffGrant, form: Any, change: bool) -> None:
        # A grant edited by hand is the admin's: the next OIDC sign-in keeps it.
        obj.source = _GrantSource.ADMIN  # type: ignore[assignment]  # the stubs see the (value, label) pair
        super().save_model(request, obj, form, change)


@admin.register(StaffIdentity)
class _StaffIdentityAdmin(SuperuserOnlyAdmin):
    """Read-only: identities are written by OIDC sign-ins."""

    list_display = ["user", "issuer", "subject", "all_companies", "last_sign_in"]
    search_fields = ["user__username", "user__email", "=subject"]
    readonly_fields = ["user", "issuer", "subject", "all_companies", "last_sign_in"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
