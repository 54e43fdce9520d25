from __future__ import annotations

from django.urls import path

from . import views

app_name = "demo_idp"

urlpatterns = [
    path("metadata/", views.metadata, name="metadata"),
    path("sso/redirect/", views.sso_redirect, name="sso_redirect"),
    path("sso/post/", views.sso_post, name="sso_post"),
    path("sso/continue/", views.sso_continue, name="sso_continue"),
    path("slo/", views.slo, name="slo"),
]
