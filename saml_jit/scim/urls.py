"""Include under the prefix you want: ``path("scim/v2/", include("saml_jit.scim.urls"))``."""

from django.urls import re_path

from .views import ScimView

app_name = "saml_jit_scim"

urlpatterns = [
    re_path(r"^(?P<path>.*)$", ScimView.as_view(), name="scim"),
]
