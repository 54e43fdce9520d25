from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path

from bench import floor

urlpatterns = [
    path("admin/", admin.site.urls),
    path("saml2/", include("saml_jit.urls")),
    path("stock/", include(("djangosaml2.urls", "stock"), namespace="stock")),
    path("accounts/", include("allauth.urls")),
    path("floor/start/", floor.start_view),
    path("floor/login/", floor.login_view),
    path("", lambda request: HttpResponse("home")),
]
