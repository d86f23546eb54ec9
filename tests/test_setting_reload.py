"""Modules that cache what settings build reload through Django's ``setting_changed`` signal.

``conf.reload_hooks`` is deprecated: a module still relying on it would stop reloading the day the
list goes, so the package's own caches must not be on it.
"""

from __future__ import annotations

import uuid
from importlib.util import find_spec

import pytest
from django.conf import settings
from django.test import override_settings

from cobee_django import conf, instrumentation, membership


@pytest.fixture
def no_deprecated_hooks(monkeypatch):
    """Run with the deprecated hook list empty: only signal receivers can reload."""
    monkeypatch.setattr(conf, "reload_hooks", [])


def test_the_package_does_not_use_the_deprecated_hook_list() -> None:
    assert membership._reset not in conf.reload_hooks


def test_membership_forgets_what_it_recorded_when_the_settings_change(no_deprecated_hooks) -> None:
    key = (uuid.uuid4(), None)
    membership._recorded[key] = None
    try:
        with override_settings(COBEE_DJANGO={**settings.COBEE_DJANGO, "LEEWAY": 7}):
            assert key not in membership._recorded
    finally:
        membership._recorded.pop(key, None)


@pytest.mark.skipif(find_spec("opentelemetry") is None, reason="needs the otel extra")
@pytest.mark.parametrize("wanted", [True, False])
def test_telemetry_follows_the_setting(no_deprecated_hooks, wanted: bool) -> None:
    """The OpenTelemetry hooks are installed and removed as the setting turns on and off."""
    with override_settings(COBEE_DJANGO={**settings.COBEE_DJANGO, "TELEMETRY": wanted}):
        assert (instrumentation.installed() is not None) is wanted
    assert (instrumentation.installed() is not None) is (settings.COBEE_DJANGO.get("TELEMETRY") is True)
