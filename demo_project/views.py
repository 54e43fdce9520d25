"""The demo's home page: what saml_jit did for the signed-in user."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from saml_jit.models import ProvisioningEvent

RECENT_EVENTS = 10


def home(request: HttpRequest) -> HttpResponse:
    context: dict = {"demo_idp_trusted": settings.DEMO_IDP_TRUSTED}
    user = request.user
    if user.is_authenticated:
        context.update(
            identities=user.saml_identities.all(),
            groups=user.groups.order_by("name"),
            events=ProvisioningEvent.objects.filter(user=user)[:RECENT_EVENTS],
        )
    return render(request, "home.html", context)
