from importlib.util import find_spec

from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from djangosaml2 import views as djangosaml2_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("saml2/", include("saml_jit.urls")),
    # SCIM needs the scim extra (Python 3.11+).
    *([path("scim/v2/", include("saml_jit.scim.urls"))] if find_spec("scim2_server") else []),
    # Stock djangosaml2, for tests that show what saml_jit refuses and it does not.
    path("stock-saml2/acs/", djangosaml2_views.AssertionConsumerServiceView.as_view(), name="stock_acs"),
    path("stock-saml2/ls/", djangosaml2_views.LogoutView.as_view(), name="stock_ls"),
    path("", lambda request: HttpResponse("home"), name="home"),
]
