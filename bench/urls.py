from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("saml2/", include("saml_jit.urls")),
    path("stock/", include(("djangosaml2.urls", "stock"), namespace="stock")),
    path("", lambda request: HttpResponse("home")),
]
