"""The form that edits one development person."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .persons import Person, format_attributes, parse_attributes


class PersonForm(forms.Form):
    name_id = forms.CharField(
        label=_("NameID (persistent)"),
        max_length=256,
        help_text=_("The subject the SP binds the account to. Change it to sign in as a new identity."),
    )
    attributes = forms.CharField(
        label=_("Attributes"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 60}),
        help_text=_("One “name: value” per line; repeat a name for several values (e.g. mail, givenName, sn)."),
    )
    groups = forms.CharField(
        label=_("Groups (isMemberOf)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text=_("One group per line."),
    )

    @classmethod
    def for_person(cls, person: Person, data: Any = None) -> PersonForm:
        initial = {
            "name_id": person.name_id,
            "attributes": format_attributes(person.attributes),
            "groups": "\n".join(person.groups),
        }
        return cls(data=data, initial=initial)

    def clean_attributes(self) -> dict[str, list[str]]:
        try:
            return parse_attributes(self.cleaned_data["attributes"])
        except ValueError as exc:
            raise forms.ValidationError(
                _("Line %(line)s is not “name: value”."), code="bad_line", params={"line": exc.args[0]}
            ) from exc

    def clean_groups(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["groups"].splitlines() if line.strip()]

    def person(self, original: Person) -> Person:
        """``original`` with the edited fields (call after ``is_valid``)."""
        data = self.cleaned_data
        return Person(
            key=original.key,
            name_id=data["name_id"].strip(),
            attributes=data["attributes"],
            groups=data["groups"],
            description=original.description,
        )
