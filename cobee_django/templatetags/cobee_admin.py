"""Template tags of the tenant-aware admin: ``{% load cobee_admin %}``."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse

from .. import staff
from ..staff.switcher import FIELD

__all__ = ["tenant_switcher"]

register = template.Library()


def _back_url(context: template.Context) -> str:
    """Where the switcher returns: the model's list on model pages (an object may not exist in
    the next company), else the current page."""
    request = context.get("request")
    opts = context.get("opts")
    if opts is not None:
        try:
            return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        except NoReverseMatch:
            pass
    return request.get_full_path() if request is not None else ""


@register.inclusion_tag("cobee_django/tenant_switcher.html", takes_context=True)
def tenant_switcher(context: template.Context) -> dict[str, Any]:
    """The company switcher of the admin header (nothing for anonymous or non-staff users)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not staff.is_staff_user(user):
        return {"show": False}
    try:
        action = reverse("cobee_django:switch_tenant")
    except NoReverseMatch:
        action = ""
    active = staff.active_choice(request)
    return {
        "show": True,
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "action": action,
        "field": FIELD,
        "choices": staff.choices_for_request(request),
        "active": active,
        "next": _back_url(context),
    }


@register.simple_tag(name="oidc_login_url")
def _oidc_login_url() -> str:
    """The OIDC sign-in URL when mozilla-django-oidc's URLs are installed, else an empty string."""
    try:
        return reverse("oidc_authentication_init")
    except NoReverseMatch:
        return ""
