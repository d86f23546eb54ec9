"""The admin classes users import live in cobee_django.admin; the rest of the staff side in cobee_django.staff."""

from __future__ import annotations

import importlib

import pytest
from django.contrib import admin
from django.contrib.auth import load_backend

from cobee_django.models import Company, Corporation, StaffGrant


@pytest.mark.parametrize("name", ["cobee_django.oidc", "cobee_django.switcher", "cobee_django.staff.admin"])
def test_no_module_stands_under_another_path(name: str) -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)


def test_autodiscovery_registers_the_registry_admin() -> None:
    from cobee_django.admin import _CompanyAdmin, _CorporationAdmin, _StaffGrantAdmin

    assert isinstance(admin.site._registry[Company], _CompanyAdmin)
    assert isinstance(admin.site._registry[Corporation], _CorporationAdmin)
    assert isinstance(admin.site._registry[StaffGrant], _StaffGrantAdmin)


def test_the_backend_loads_by_its_path() -> None:
    from cobee_django.staff.oidc import StaffOIDCBackend

    assert isinstance(load_backend("cobee_django.staff.oidc.StaffOIDCBackend"), StaffOIDCBackend)
