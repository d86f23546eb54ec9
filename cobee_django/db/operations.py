"""Migration operations that install the second wall on PostgreSQL.

Add them to a migration of the app that owns the tenant models, after the models exist::

    from cobee_django.db.operations import AddSameCompanyConstraint, EnableRowLevelSecurity

    operations = [
        EnableRowLevelSecurity("Employee"),
        EnableRowLevelSecurity("Consumption"),
        AddSameCompanyConstraint("Consumption", "employee"),
    ]

Both are reversible and change no model state. On other databases they do nothing and log why:
row-level security is a PostgreSQL feature, and the ORM's scoping still holds there.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState
from django.db.models import ForeignKey, Model

from ..company_field import company_column
from . import policy
from ._catalog import is_citus

__all__ = ["AddSameCompanyConstraint", "EnableRowLevelSecurity"]

logger = logging.getLogger("cobee_django.rls")
#: Vendors already told that these operations do nothing there (once per process is enough).
_skipped_vendors: set[str] = set()


class _PostgreSQLOperation(Operation):
    reversible = True
    reduces_to_sql = True

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass  # database only: the models do not change

    def _model(self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, state: ProjectState) -> Any:
        """The historical model, or ``None`` when this database gets nothing."""
        model = state.apps.get_model(app_label, self.model_name)  # type: ignore[attr-defined]
        connection = schema_editor.connection
        if not self.allow_migrate_model(connection.alias, model):
            return None
        if connection.vendor != "postgresql":
            if connection.vendor not in _skipped_vendors:
                _skipped_vendors.add(connection.vendor)
                logger.warning(
                    "Row-level security operations do nothing on %s: they need PostgreSQL. "
                    "The ORM's tenant scoping still applies.",
                    connection.vendor,
                )
            return None
        return model

    def _run(self, schema_editor: BaseDatabaseSchemaEditor, statements: list[str]) -> None:
        for sql in statements:
            schema_editor.execute(sql, params=None)


class EnableRowLevelSecurity(_PostgreSQLOperation):
    """Enable and force row-level security on a tenant model's table, with the tenant policies.

    Reversing drops the policies and turns row-level security off again.
    """

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def describe(self) -> str:
        return f"Enable row-level security on {self.model_name}"

    @property
    def migration_name_fragment(self) -> str:
        return f"{self.model_name.lower()}_row_level_security"

    def database_forwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        model = self._model(app_label, schema_editor, to_state)
        if model is not None:
            quote = schema_editor.quote_name
            citus = is_citus(schema_editor.connection)
            table, column = model._meta.db_table, company_column(model)
            self._run(schema_editor, policy.enable_sql(table, column, quote, citus=citus))

    def database_backwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        model = self._model(app_label, schema_editor, from_state)
        if model is not None:
            self._run(schema_editor, policy.disable_sql(model._meta.db_table, schema_editor.quote_name))


class AddSameCompanyConstraint(_PostgreSQLOperation):
    """Make a foreign key between two tenant models unable to point at another company's row.

    Adds a unique index on the target's ``(company, pk)`` and a composite foreign key from the
    source's ``(company, field)``, checked at once (not deferred). Reversing drops the foreign
    key; the unique index stays, since other constraints may rely on it.
    """

    def __init__(self, model_name: str, field_name: str) -> None:
        self.model_name = model_name
        self.field_name = field_name

    def describe(self) -> str:
        return f"Keep {self.model_name}.{self.field_name} inside one company"

    @property
    def migration_name_fragment(self) -> str:
        return f"{self.model_name.lower()}_{self.field_name.lower()}_same_company"

    def _field(self, model: type[Model]) -> ForeignKey[Any, Any]:
        field = model._meta.get_field(self.field_name)
        if not isinstance(field, ForeignKey):
            raise ValueError(f"{model._meta.label}.{self.field_name} is not a foreign key.")
        return field

    def database_forwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        model = self._model(app_label, schema_editor, to_state)
        if model is not None:
            max_length = schema_editor.connection.ops.max_name_length() or 63
            field = self._field(model)
            _, constraint = policy.same_company_names(model, field, max_length)
            if policy.has_constraint(schema_editor.connection, model._meta.db_table, constraint):
                return  # already there: distributing the table on Citus adds the same key
            sql = policy.same_company_sql(model, field, schema_editor.quote_name, max_length)
            self._run(schema_editor, sql)

    def database_backwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        model = self._model(app_label, schema_editor, from_state)
        if model is not None:
            max_length = schema_editor.connection.ops.max_name_length() or 63
            sql = policy.drop_same_company_sql(model, self._field(model), schema_editor.quote_name, max_length)
            self._run(schema_editor, sql)
