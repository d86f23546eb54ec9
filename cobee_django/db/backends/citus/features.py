"""What the Citus backend tells Django's SQL compiler."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import features

from ...citus import on_citus

__all__ = ["DatabaseFeatures"]


class DatabaseFeatures(features.DatabaseFeatures):
    def allows_group_by_selected_pks_on_model(self, model: Any) -> bool:
        """Not for tenant models on Citus: their database primary key is ``(company, id)``, not ``id``.

        Django groups an aggregate query by the primary key alone and selects the other columns,
        which PostgreSQL accepts only when that key is the table's whole primary key.
        """
        if getattr(model, "_cobee_tenant_model", False) is True and on_citus(self.connection):
            return False
        return bool(super().allows_group_by_selected_pks_on_model(model))
