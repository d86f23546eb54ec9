"""What the Citus backend tells Django's SQL compiler, and cobee_django's core."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import features

from ..._catalog import on_citus

__all__: list[str] = []


class DatabaseFeatures(features.DatabaseFeatures):
    @property
    def is_citus(self) -> bool:
        """True when the server has the ``citus`` extension (asked once per connection object).

        The tenancy core reads this flag (``getattr(connection.features, "is_citus", False)``)
        where it behaves differently on Citus: joins between tenant tables match their company
        columns, and ``save()`` refuses to move a row between companies. Other backends lack it.
        """
        return on_citus(self.connection)

    def allows_group_by_selected_pks_on_model(self, model: Any) -> bool:
        """Not for tenant models on Citus: their database primary key is ``(company, id)``, not ``id``.

        Django groups an aggregate query by the primary key alone and selects the other columns,
        which PostgreSQL accepts only when that key is the table's whole primary key.
        """
        if getattr(model, "_cobee_tenant_model", False) is True and self.is_citus:
            return False
        return bool(super().allows_group_by_selected_pks_on_model(model))
