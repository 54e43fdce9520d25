"""The test site with the development IdP mounted (tests/test_devidp.py)."""

from django.urls import include, path

from tests.urls import urlpatterns as site_urlpatterns

urlpatterns = [path("devidp/", include("saml_jit.contrib.devidp.urls")), *site_urlpatterns]
