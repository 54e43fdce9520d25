"""The demo's home page: what saml_jit did for the signed-in user."""

from __future__ import annotations

import json

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
            events=[
                (event, _as_json(event.diff)) for event in ProvisioningEvent.objects.filter(user=user)[:RECENT_EVENTS]
            ],
        )
    return render(request, "home.html", context)


def _as_json(diff: object) -> str:
    """An event's diff as indented JSON, the way it is stored and exported (not Python's repr)."""
    return json.dumps(diff, indent=2, ensure_ascii=False, sort_keys=True) if diff else ""
