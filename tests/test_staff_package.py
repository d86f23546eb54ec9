"""The staff's modules live in cobee_django.staff; their earlier paths are the same modules."""

from __future__ import annotations

import importlib

import pytest
from django.contrib import admin
from django.contrib.auth import load_backend

from cobee_django.models import Company, Corporation, StaffGrant


@pytest.mark.parametrize("name", ["admin", "oidc", "switcher"])
def test_the_old_path_is_the_same_module(name: str) -> None:
    new = importlib.import_module(f"cobee_django.staff.{name}")
    assert importlib.import_module(f"cobee_django.{name}") is new
    assert new.__name__ == f"cobee_django.staff.{name}"


def test_autodiscovery_registers_the_registry_admin_from_the_subpackage() -> None:
    from cobee_django.staff.admin import CompanyAdmin, CorporationAdmin, StaffGrantAdmin

    assert isinstance(admin.site._registry[Company], CompanyAdmin)
    assert isinstance(admin.site._registry[Corporation], CorporationAdmin)
    assert isinstance(admin.site._registry[StaffGrant], StaffGrantAdmin)


@pytest.mark.parametrize("path", ["cobee_django.staff.oidc.StaffOIDCBackend", "cobee_django.oidc.StaffOIDCBackend"])
def test_the_backend_loads_by_either_path(path: str) -> None:
    from cobee_django.staff.oidc import StaffOIDCBackend

    assert isinstance(load_backend(path), StaffOIDCBackend)
