"""The dry run in the admin: paste attributes or a SAML response, see what a login would do.

The page (``admin:saml_jit_provisioningevent_dry_run``, linked from the
saml_jit app index and the event list) runs :mod:`saml_jit.dry_run`: the
plan — account created, linked or updated, the username, the field diff,
groups and privileges granted (with their expiry) and removed — or the
denial or rejection with its reason code and detail. Nothing is written and
no event is recorded.

Who may: staff who can view events and identities (:data:`PERMISSIONS`):
the page shows which account an identity maps to and what it holds, which
those two lists show already. (A permission of its own would need a
migration.)
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import dry_run
from ..models import ENTITY_ID_MAX_LENGTH, SUBJECT_MAX_LENGTH
from ..policy import get_policy

#: What a user needs for the dry-run page (besides being active staff).
PERMISSIONS = ("saml_jit.view_provisioningevent", "saml_jit.view_federatedidentity")

TEMPLATE = "admin/saml_jit/dry_run.html"


def has_dry_run_permission(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and user.has_perms(PERMISSIONS))


class DryRunForm(forms.Form):
    """Either a SAML response, or an IdP with a NameID and attributes."""

    saml_response = forms.CharField(
        label=_("SAML response"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 100, "spellcheck": "false"}),
        help_text=_(
            "The base64 SAMLResponse as the browser posted it (a SAML tracer shows it). Checked as the ACS checks it."
        ),
    )
    idp = forms.CharField(
        label=_("identity provider"),
        required=False,
        max_length=ENTITY_ID_MAX_LENGTH,
        widget=forms.TextInput(attrs={"size": 80, "list": "saml-jit-known-idps"}),
        help_text=_("Without a response: the IdP's entity ID."),
    )
    subject = forms.CharField(
        label=_("NameID"), required=False, max_length=SUBJECT_MAX_LENGTH, widget=forms.TextInput(attrs={"size": 60})
    )
    transient = forms.BooleanField(label=_("transient NameID"), required=False)
    attributes = forms.CharField(
        label=_("attributes"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 100, "spellcheck": "false"}),
        help_text=_('A JSON object ({"mail": "a@example.org", "groups": ["staff", "users"]}) or “name: value” lines.'),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("saml_response") or "").strip():
            return data
        if not data.get("idp"):
            self.add_error("idp", gettext("Name the identity provider, or paste a SAML response."))
        try:
            data["parsed_attributes"] = dry_run.parse_attributes(data.get("attributes") or "")
        except ValueError as exc:
            self.add_error("attributes", str(exc))
        return data


def run(request: HttpRequest, data: dict[str, Any]) -> dry_run.DryRun:
    if (data.get("saml_response") or "").strip():
        return dry_run.from_saml_response(data["saml_response"], request)
    return dry_run.from_attributes(
        data["idp"], data.get("subject"), data["parsed_attributes"], transient=data["transient"], request=request
    )


def _result_context(result: dry_run.DryRun | None) -> dict[str, Any]:
    if result is None:
        return {}
    plan, refusal = result.plan or {}, result.rejection
    code = refusal.code if refusal is not None else plan.get("reason_code", "")
    return {
        "result": result,
        "plan": plan,
        "refused_code": code,
        "refused_detail": refusal.message if refusal is not None else plan.get("message", ""),
        "person_reads": get_policy().error_message(code) if code else "",
        "diff_rows": sorted((plan.get("diff") or {}).items()),
        "grant_rows": sorted((plan.get("grants") or {}).items()),
        "plan_json": json.dumps(plan, indent=2, ensure_ascii=False, sort_keys=True) if plan else "",
    }


class DryRunMixin:
    """Adds the dry-run page to the event admin's URLs."""

    admin_site: Any
    opts: Any

    def get_urls(self) -> list[URLPattern]:
        page = path(
            "dry-run/", self.admin_site.admin_view(self.dry_run_view), name="saml_jit_provisioningevent_dry_run"
        )
        return [page, *super().get_urls()]  # type: ignore[misc]

    def dry_run_view(self, request: HttpRequest) -> HttpResponse:
        if not has_dry_run_permission(request):
            raise PermissionDenied
        from .events import known_idps

        form = DryRunForm(request.POST if request.method == "POST" else None)
        result = run(request, form.cleaned_data) if form.is_bound and form.is_valid() else None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Dry run"),
            "form": form,
            "known_idps": known_idps(),
            **_result_context(result),
        }
        return TemplateResponse(request, TEMPLATE, context)
