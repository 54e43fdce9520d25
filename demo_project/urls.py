"""URLs of the saml_jit demo site."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from demo_project.views import home

urlpatterns = [
    path("admin/", admin.site.urls),
    path("saml2/", include("saml_jit.urls")),
    path("idp/", include("demo_project.demo_idp.urls")),
    path("", home, name="home"),
]
