"""Views of the embedded demo IdP.

The flow is stateless: the SP's AuthnRequest travels in the person-picker
form and is parsed again when a person is chosen, so nothing is kept in the
session or in memory between the two steps.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.xmldsig import SIG_RSA_SHA256

from saml_jit.testing.idp import FRIENDLY_NAMES, AuthnRequestInfo

from .idp import get_idp
from .people import PEOPLE, PEOPLE_BY_KEY

logger = logging.getLogger(__name__)

BINDINGS = {"redirect": BINDING_HTTP_REDIRECT, "post": BINDING_HTTP_POST}


def _error(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    return render(request, "demo_idp/error.html", {"message": message}, status=status)


def _parse(saml_request: str, relay_state: str, binding_key: str) -> AuthnRequestInfo | None:
    binding = BINDINGS.get(binding_key)
    if not saml_request or binding is None:
        return None
    try:
        return get_idp().parse_authn_request(saml_request, relay_state, binding)
    except Exception as exc:  # malformed, unknown SP, foreign ACS URL: all mean "refuse"
        # The type only: pysaml2's messages can quote the XML they choked on.
        logger.warning("Demo IdP refused an AuthnRequest (%s)", type(exc).__name__)
        return None


@require_GET
def metadata(request: HttpRequest) -> HttpResponse:
    return HttpResponse(get_idp().metadata_xml(), content_type="application/samlmetadata+xml")


def _choose(request: HttpRequest, params: dict, binding_key: str) -> HttpResponse:
    saml_request, relay_state = params.get("SAMLRequest", ""), params.get("RelayState", "")
    info = _parse(saml_request, relay_state, binding_key)
    if info is None:
        return _error(request, "This is not a valid SAML AuthnRequest from a service provider the demo IdP knows.")
    context = {
        "people": PEOPLE,
        "info": info,
        "saml_request": saml_request,
        "relay_state": relay_state,
        "binding": binding_key,
    }
    return render(request, "demo_idp/choose.html", context)


@require_GET
def sso_redirect(request: HttpRequest) -> HttpResponse:
    return _choose(request, request.GET, "redirect")


# A SAML binding endpoint: the SP's auto-submitted form cannot carry our CSRF
# token. Nothing is changed here; the CSRF-protected step is sso_continue.
@csrf_exempt
@require_POST
def sso_post(request: HttpRequest) -> HttpResponse:
    return _choose(request, request.POST, "post")


@require_POST
def sso_continue(request: HttpRequest) -> HttpResponse:
    """Answer the AuthnRequest as the chosen person, with a signed response."""
    post = request.POST
    relay_state = post.get("RelayState", "")
    info = _parse(post.get("SAMLRequest", ""), relay_state, post.get("binding", ""))
    person = PEOPLE_BY_KEY.get(post.get("person", ""))
    if info is None or person is None:
        return _error(request, "The sign-in request is invalid or no demo person was chosen.")
    data = get_idp().post_data(
        sp_entity_id=info.sp_entity_id,
        acs_url=info.acs_url,
        name_id=person.name_id,
        attributes=person.attributes(),
        friendly_names=FRIENDLY_NAMES,
        in_response_to=info.request_id,
    )
    context = {"acs_url": info.acs_url, "saml_response": data["SAMLResponse"], "relay_state": relay_state}
    return render(request, "demo_idp/post_form.html", context)


@csrf_exempt  # SAML binding endpoint, see sso_post
@require_http_methods(["GET", "POST"])
def slo(request: HttpRequest) -> HttpResponse:
    """Answer an SP's LogoutRequest; there is no IdP session to end."""
    params = request.GET if request.method == "GET" else request.POST
    binding = BINDING_HTTP_REDIRECT if request.method == "GET" else BINDING_HTTP_POST
    saml_request = params.get("SAMLRequest")
    if not saml_request:
        return render(request, "demo_idp/signed_out.html")
    try:
        return _logout_response(saml_request, params.get("RelayState", ""), binding)
    except Exception as exc:
        logger.warning("Demo IdP could not answer a LogoutRequest (%s)", type(exc).__name__)
        return render(request, "demo_idp/signed_out.html", status=400)


def _logout_response(saml_request: str, relay_state: str, binding: str) -> HttpResponse:
    server = get_idp().server
    logout_request = server.parse_logout_request(saml_request, binding).message
    sp_entity_id = logout_request.issuer.text.strip()
    # Answer over HTTP-Redirect to the SP's registered logout endpoint, signed.
    destination = server.metadata.single_logout_service(sp_entity_id, BINDING_HTTP_REDIRECT, "spsso")[0]["location"]
    response = server.create_logout_response(logout_request, [BINDING_HTTP_REDIRECT])
    http_args = server.apply_binding(
        BINDING_HTTP_REDIRECT,
        str(response),
        destination,
        relay_state,
        response=True,
        sign=True,
        sigalg=SIG_RSA_SHA256,  # pysaml2 would use RSA-SHA1, which the SP refuses
    )
    return HttpResponseRedirect(dict(http_args["headers"])["Location"])
