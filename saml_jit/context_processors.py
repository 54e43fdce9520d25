"""Template context for sites that show saml_jit's step-up link.

Add ``"saml_jit.context_processors.step_up"`` to your templates'
``context_processors``; then ``{% if saml_jit_step_up_url %}<a href="{{ saml_jit_step_up_url }}">…</a>{% endif %}``
offers the step-up exactly when this session's privileges were withheld for
want of MFA (``PRIVILEGES_REQUIRE_MFA``). It reads the session only: no query.
"""

from __future__ import annotations

from django.http import HttpRequest

from .sessions import step_up_url


def step_up(request: HttpRequest) -> dict[str, str | None]:
    """``saml_jit_step_up_url``: the step-up link back to the current page, or None."""
    return {"saml_jit_step_up_url": step_up_url(request, request.get_full_path())}
