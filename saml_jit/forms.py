"""Login forms that say why an SSO-only account cannot use its password.

:class:`saml_jit.backends.PasswordBackend` refuses a correct password for an
account bound to an IdP with ``ALLOW_PASSWORD_LOGIN`` off; these forms turn
that refusal into "sign in through single sign-on" instead of the generic
"wrong username or password". saml_jit's admin uses
:class:`SsoAwareAdminAuthenticationForm` unless the site set its own
``admin.site.login_form``; pass :class:`SsoAwareAuthenticationForm` as
``authentication_form`` to your own ``LoginView``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .backends import SSO_REQUIRED_ATTRIBUTE

SSO_REQUIRED = _("This account signs in through single sign-on only. Use your organisation's sign-in page instead.")


class SsoAwareMixin:
    request: Any

    def clean(self) -> Any:
        try:
            return super().clean()  # type: ignore[misc]
        except ValidationError:
            if getattr(self.request, SSO_REQUIRED_ATTRIBUTE, None):
                raise ValidationError(SSO_REQUIRED, code="sso_required") from None
            raise


class SsoAwareAuthenticationForm(SsoAwareMixin, AuthenticationForm):
    pass


class SsoAwareAdminAuthenticationForm(SsoAwareMixin, AdminAuthenticationForm):
    pass
