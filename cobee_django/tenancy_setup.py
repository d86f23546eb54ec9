"""Wiring done once at startup: relation accessors scoped, write-guard receivers connected."""

from __future__ import annotations

from django.db.models.signals import m2m_changed, pre_save

from . import guards, membership  # noqa: F401  (membership installs state.for_corporation's lookup)
from .managers import install_relation_scoping

__all__ = ["install"]


def install() -> None:
    """Scope relation accessors and connect the write guards (idempotent)."""
    install_relation_scoping()
    m2m_changed.connect(guards.check_m2m_add, dispatch_uid="cobee_django.m2m_guard")
    pre_save.connect(guards.check_any_save, dispatch_uid="cobee_django.reference_guard")
