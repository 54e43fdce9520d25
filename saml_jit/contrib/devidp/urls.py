"""The development IdP's pages and SAML endpoints. Include under ``devidp/``::

path("devidp/", include("saml_jit.contrib.devidp.urls")),
"""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "devidp"

urlpatterns = [
    path("", views.index, name="index"),
    path("people/<str:key>/", views.edit, name="edit"),
    path("people-reset/", views.reset, name="reset"),
    path("metadata/", views.metadata, name="metadata"),
    path("sso/redirect/", views.sso_redirect, name="sso_redirect"),
    path("sso/post/", views.sso_post, name="sso_post"),
    path("sso/continue/", views.sso_continue, name="sso_continue"),
    path("slo/", views.slo, name="slo"),
]
