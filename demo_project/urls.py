"""URLs of the saml_jit demo site."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from demo_project.views import home

urlpatterns = [
    path("admin/", admin.site.urls),
    path("saml2/", include("saml_jit.urls")),
]
if settings.DEMO_IDP_TRUSTED:
    urlpatterns.append(path("devidp/", include("saml_jit.contrib.devidp.urls")))
urlpatterns += [
    path("", home, name="home"),
]
