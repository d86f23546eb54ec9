"""The tenant-state functions say whether they raise, in their names and their docstrings' first line."""

from __future__ import annotations

import pytest

from cobee_django import state
from cobee_django.exceptions import NoTenantBound

NEVER_RAISE = ["tenant_or_none", "is_unscoped"]
RAISE = ["require_scope", "require_tenant"]


@pytest.mark.parametrize("name", NEVER_RAISE + RAISE)
def test_the_first_line_says_whether_it_raises(name: str) -> None:
    first = (getattr(state, name).__doc__ or "").splitlines()[0]
    expected = "Never raises" if name in NEVER_RAISE else "Raises NoTenantBound when"
    assert first.startswith(expected)


def test_the_old_names_are_gone() -> None:
    for old in ("get_tenant", "current_scope"):
        assert not hasattr(state, old), old


def test_what_each_does_with_nothing_bound_and_unscoped() -> None:
    assert state.tenant_or_none() is None and not state.is_unscoped()
    for raising in (state.require_scope, state.require_tenant):
        with pytest.raises(NoTenantBound):
            raising()
    with state.unscoped():
        assert state.tenant_or_none() is None and state.is_unscoped()
        assert state.require_scope() is state.UNSCOPED  # said explicitly, never None
        with pytest.raises(NoTenantBound):
            state.require_tenant()
