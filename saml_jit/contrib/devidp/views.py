"""Pages and SAML endpoints of the development IdP.

The sign-in flow is stateless: the SP's AuthnRequest travels in the
person-picker form and is parsed again when a person is chosen. Every view
answers 404 unless ``DEBUG`` is on (check ``saml_jit.devidp.E001`` says why
at start-up; this covers servers that run no checks).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.xmldsig import SIG_RSA_SHA256

from saml_jit.testing.idp import FRIENDLY_NAMES, AuthnRequestInfo, TestIdP

from . import persons
from .forms import PersonForm
from .idp import NotTrusted, get_idp, registered_site, sp_trusts

logger = logging.getLogger(__name__)

BINDINGS = {"redirect": BINDING_HTTP_REDIRECT, "post": BINDING_HTTP_POST}


def dev_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.DEBUG:
            raise Http404("The development IdP only answers while DEBUG is on.")
        return view(request, *args, **kwargs)

    return wrapper


def _error(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    return render(request, "saml_jit/devidp/error.html", {"message": message}, status=status)


def _cookie(request: HttpRequest) -> str | None:
    return request.COOKIES.get(persons.COOKIE_NAME)


def _url(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:  # saml_jit.urls not included (the index says what is missing)
        return None


def _other_origin(request: HttpRequest) -> str | None:
    """The IdP's own URL when this page was reached at another origin (``127.0.0.1`` for ``localhost``)."""
    site = registered_site()
    if site is None:
        return None
    here, there = urlsplit(request.build_absolute_uri()), urlsplit(site.base)
    return None if (here.scheme, here.netloc) == (there.scheme, there.netloc) else site.base


@dev_only
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    # Cookies are per host: a login started at 127.0.0.1 whose IdP and ACS are
    # at localhost (the configured base URL) would come back unsolicited.
    if (target := _other_origin(request)) is not None:
        return HttpResponseRedirect(target)
    try:
        idp: TestIdP | None = get_idp()
    except NotTrusted:
        idp = None
    context = {
        "people": persons.people(_cookie(request)),
        "idp": idp,
        "trusted": idp is not None and sp_trusts(idp),
        "login_url": _url("saml2_login"),
        "logout_url": _url("saml2_logout"),
        # The site's own session: after a sign-in, this page says as whom.
        "site_user": getattr(request, "user", None),
    }
    return render(request, "saml_jit/devidp/index.html", context)


def _save(response: HttpResponse, edits: dict[str, persons.Person]) -> bool:
    value = persons.dump_edits(edits)
    if len(value) > persons.COOKIE_MAX:
        return False
    path = reverse("devidp:index")
    response.set_cookie(persons.COOKIE_NAME, value, path=path, httponly=True, samesite="Lax")
    return True


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("devidp:index")


@dev_only
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, key: str) -> HttpResponse:
    """Edit one person's NameID, attributes and groups (kept in this browser's cookie)."""
    person = persons.find(_cookie(request), key)
    if person is None:
        raise Http404(_("No such person."))
    form = PersonForm.for_person(person, request.POST if request.method == "POST" else None)
    if form.is_valid():
        edits = persons.read_edits(_cookie(request))
        edits[key] = form.person(person)
        response = HttpResponseRedirect(_next(request))
        if _save(response, edits):
            return response
        form.add_error(None, _("Too much to keep in a cookie: shorten the attributes or reset the edits."))
    context = {"person": person, "form": form, "next": _next(request)}
    return render(request, "saml_jit/devidp/edit.html", context, status=400 if form.errors else 200)


@dev_only
@require_POST
def reset(request: HttpRequest) -> HttpResponse:
    """Forget this browser's edits: the configured people again."""
    response = HttpResponseRedirect(reverse("devidp:index"))
    response.delete_cookie(persons.COOKIE_NAME, path=reverse("devidp:index"))
    return response


@dev_only
@require_GET
def metadata(request: HttpRequest) -> HttpResponse:
    try:
        xml = get_idp().metadata_xml()
    except NotTrusted:
        return _error(request, _("The SP does not trust the development IdP yet: see the check's hint."), 503)
    return HttpResponse(xml, content_type="application/samlmetadata+xml")


def _parse(saml_request: str, binding_key: str) -> AuthnRequestInfo | None:
    binding = BINDINGS.get(binding_key)
    if not saml_request or binding is None:
        return None
    try:
        return get_idp().parse_authn_request(saml_request, None, binding)
    except Exception as exc:  # malformed, unknown SP, foreign ACS URL, not trusted: all mean "refuse"
        # The type only: pysaml2's messages can quote the XML they choked on.
        logger.warning("Development IdP refused an AuthnRequest (%s)", type(exc).__name__)
        return None


def _choose(request: HttpRequest, params: Any, binding_key: str) -> HttpResponse:
    saml_request, relay_state = params.get("SAMLRequest", ""), params.get("RelayState", "")
    info = _parse(saml_request, binding_key)
    if info is None:
        message = _(
            "This is not a valid SAML AuthnRequest from the service provider this IdP trusts. "
            "Start again from the site's sign-in link."
        )
        return _error(request, message)
    context = {
        "people": persons.people(_cookie(request)),
        "info": info,
        "saml_request": saml_request,
        "relay_state": relay_state,
        "binding": binding_key,
        "back": request.get_full_path() if binding_key == "redirect" else "",
    }
    return render(request, "saml_jit/devidp/choose.html", context)


@dev_only
@require_GET
def sso_redirect(request: HttpRequest) -> HttpResponse:
    return _choose(request, request.GET, "redirect")


# A SAML binding endpoint: the SP's auto-submitted form cannot carry our CSRF
# token. Nothing is changed here; the CSRF-protected step is sso_continue.
@csrf_exempt
@dev_only
@require_POST
def sso_post(request: HttpRequest) -> HttpResponse:
    return _choose(request, request.POST, "post")


@dev_only
@require_POST
def sso_continue(request: HttpRequest) -> HttpResponse:
    """Answer the AuthnRequest as the chosen person, with a signed response POSTed to the ACS."""
    post = request.POST
    info = _parse(post.get("SAMLRequest", ""), post.get("binding", ""))
    person = persons.find(_cookie(request), post.get("person", ""))
    if info is None or person is None:
        return _error(request, _("The sign-in request is invalid or no person was chosen. Start again."))
    data = get_idp().post_data(
        sp_entity_id=info.sp_entity_id,
        acs_url=info.acs_url,
        name_id=person.name_id,
        attributes=person.saml_attributes(),
        friendly_names=FRIENDLY_NAMES,
        in_response_to=info.request_id,
    )
    context = {"acs_url": info.acs_url, "saml_response": data["SAMLResponse"], "relay_state": post.get("RelayState")}
    return render(request, "saml_jit/devidp/post_form.html", context)


@csrf_exempt  # SAML binding endpoint, see sso_post
@dev_only
@require_http_methods(["GET", "POST"])
def slo(request: HttpRequest) -> HttpResponse:
    """Answer an SP's LogoutRequest; the IdP keeps no session, so there is nothing else to end."""
    params = request.GET if request.method == "GET" else request.POST
    binding = BINDING_HTTP_REDIRECT if request.method == "GET" else BINDING_HTTP_POST
    saml_request = params.get("SAMLRequest")
    if not saml_request:
        return render(request, "saml_jit/devidp/signed_out.html")
    try:
        return _logout_response(saml_request, params.get("RelayState", ""), binding)
    except Exception as exc:
        logger.warning("Development IdP could not answer a LogoutRequest (%s)", type(exc).__name__)
        return render(request, "saml_jit/devidp/signed_out.html", status=400)


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
