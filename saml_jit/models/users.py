"""Helpers on the site's user model: the case-insensitive email index saml_jit adds (migration 0006)."""

from __future__ import annotations

from typing import Any, cast

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models.functions import Upper

#: The index saml_jit adds to the user model's table (migration 0006) so that
#: a case-insensitive email look-up (first logins) does not read every user.
USER_EMAIL_INDEX = "saml_jit_user_email_upper"


def _email_field(user_model: Any) -> str | None:
    name = user_model.get_email_field_name()
    try:
        field = user_model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    return name if getattr(field, "concrete", False) else None


def user_email_index(user_model: Any) -> models.Index | None:
    """``UPPER(email)`` on the user table, or None for a user model without an email column."""
    name = _email_field(user_model)
    return models.Index(Upper(name), name=USER_EMAIL_INDEX) if name else None


def users_with_email(user_model: Any, email: str) -> models.QuerySet[Any]:
    """Users whose email equals ``email`` ignoring ASCII case, through :data:`USER_EMAIL_INDEX`.

    Same matches as ``email__iexact`` for the ASCII addresses saml_jit
    accepts, but as ``UPPER(email) = 'ADDRESS'``: the expression the index is
    built on (``iexact`` is ``LIKE`` on SQLite and ``UPPER(email::text)`` on
    PostgreSQL, which no index serves).
    """
    return users_with_upper_email(user_model, email.upper())


def users_with_upper_email(user_model: Any, upper_email: str) -> models.QuerySet[Any]:
    """:func:`users_with_email` for an address already in upper case (``str.upper``)."""
    name = _email_field(user_model)
    if name is None:
        return cast("models.QuerySet[Any]", user_model._default_manager.none())
    return cast(
        "models.QuerySet[Any]",
        user_model._default_manager.alias(_saml_jit_email=Upper(name)).filter(_saml_jit_email=upper_email),
    )
