"""djangosaml2's routes, with saml_jit's ACS. Include under a prefix of your choice::

path("saml2/", include("saml_jit.urls")),
"""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="saml2_login"),
    path("step-up/", views.StepUpView.as_view(), name="saml2_step_up"),
    path("acs/", views.AssertionConsumerServiceView.as_view(), name="saml2_acs"),
    path("logout/", views.LogoutInitView.as_view(), name="saml2_logout"),
    path("ls/", views.LogoutView.as_view(), name="saml2_ls"),
    path("ls/post/", views.LogoutView.as_view(), name="saml2_ls_post"),
    path("metadata/", views.MetadataView.as_view(), name="saml2_metadata"),
]
