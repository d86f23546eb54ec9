"""The admin's company switcher: the POST view that changes the active company.

The switcher form is drawn on every admin page by the ``{% tenant_switcher %}`` tag
(``cobee_django.templatetags.cobee_admin``); this view is where it posts. The posted key is
checked against the user's current grants here, on the server: a forged or stale value changes
nothing and answers 400.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from .. import staff

__all__: list[str] = []

#: The form field holding the chosen key (``company:<uuid>`` or ``corporation:<uuid>``).
FIELD = "tenant"


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:index")


@require_POST
@csrf_protect
def switch_tenant(request: HttpRequest) -> HttpResponse:
    """Make the posted company or corporation the active one, then go back where the user was."""
    if not staff.is_staff_user(request.user):
        return HttpResponseRedirect(f"{reverse('admin:login')}?next={reverse('admin:index')}")
    choice = staff.switch(request, request.POST.get(FIELD))
    if choice is None:
        return HttpResponseBadRequest("That company is not one you may manage.", content_type="text/plain")
    messages.info(request, f"You are now managing {choice.label}.")
    return HttpResponseRedirect(_next_url(request))
