"""The Django view serving every SCIM endpoint under the prefix it is included at."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from scim2_models import (
    Context,
    PatchOp,
    PayloadTooLargeException,
    Resource,
    ResourceType,
    SCIMException,
    UnauthorizedException,
)
from scim2_server.conditions import Conditions
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService

from . import auth, conf, dialects
from .common import Scope
from .filters import qualify
from .resources import ENTERPRISE, ENTERPRISE_NAMES, provider, references
from .storage import DjangoStorage, wants_members

logger = logging.getLogger(__name__)


class Service(ScimService):
    """scim2-server's protocol steps, with the answers IdPs expect."""

    def patch_response(self, base_url: str, resource: Any, response_parameters: Any) -> ScimResponse:
        # RFC 7644 §3.5.2 allows 200 with the resource or 204. Okta expects
        # the user back and Entra ID accepts both; a group answers 204 (unless
        # attributes are asked for): returning every member of a large group
        # is what Entra asks servers not to do.
        if resource.meta.resource_type == "Group":
            return super().patch_response(base_url, resource, response_parameters)
        return self.resource_response(
            self.publish(base_url, resource), Context.RESOURCE_REPLACEMENT_RESPONSE, response_parameters
        )

    def publish(self, base_url: str, resource: Resource[Any]) -> Resource[Any]:
        """scim2-server's, without its deep copy and its walk over every attribute for references.

        The storage builds a new resource for every request, and saml_jit's
        references are known: ``groups``, ``members`` and the enterprise
        ``manager``. On a page of 100 users this is most of the time.
        """
        assert resource.meta is not None and resource.id is not None
        location = self.resource_location(base_url, self.get_resource_type_of(resource), resource.id)
        resource.meta = resource.meta.model_copy(update={"location": location})
        for entry in references(resource):
            entry.ref = self.reference_location(base_url, entry.ref)
        return resource

    def read_search(self, resource_types: list[ResourceType], payload: Any) -> Any:
        # Entra ID filters on enterprise attributes by their bare names ("manager eq …").
        users = any(resource_type.name == "User" for resource_type in resource_types)
        if users and isinstance(payload, dict) and isinstance(payload.get("filter"), str):
            payload = {**payload, "filter": qualify(payload["filter"], ENTERPRISE, ENTERPRISE_NAMES)}
        return super().read_search(resource_types, payload)


class Handler(ScimHandler):
    """scim2-server's handler, but a group's PATCH goes to :meth:`Groups.patch` (members changed in SQL)."""

    storage: DjangoStorage

    def handle(self, request: ScimRequest) -> ScimResponse:
        self.request = request
        return super().handle(request)

    def patch_resource(
        self, resource_type: ResourceType, resource_id: str, patch_op: PatchOp[Any], conditions: Conditions
    ) -> Resource[Any]:
        if resource_type.name != "Group":
            return super().patch_resource(resource_type, resource_id, patch_op, conditions)
        parameters = self.service.read_response_parameters(resource_type, self.request.query)
        return self.storage.groups.patch(
            resource_id,
            patch_op,
            lambda current: self.service.check_preconditions(current, "PATCH", conditions),
            members=wants_members(parameters) and bool(parameters.attributes or parameters.excluded_attributes),
        )


def service() -> ScimService:
    return Service(provider(conf.page_size()))


@method_decorator(csrf_exempt, name="dispatch")
class ScimView(View):
    """Authenticates the bearer token, then lets scim2-server handle the request.

    Every endpoint needs a valid token, discovery included: without one the
    answer is a bare 401 that reveals nothing about the users, the groups or
    even which paths exist. A request's changes and its events commit
    together, or not at all.
    """

    http_method_names = ["get", "post", "put", "patch", "delete"]

    def dispatch(self, request: HttpRequest, *args: Any, path: str = "", **kwargs: Any) -> HttpResponse:
        scim = service()
        client = auth.authenticate(request)
        if client is None:
            return to_django(scim.error_response(UnauthorizedException(detail="Authentication required.")))
        scim_request = self.scim_request(request, path)
        try:
            scim_request.body = dialects.normalise(scim_request.method, scim_request.path, read_body(request))
            with transaction.atomic():
                response = Handler(scim, DjangoStorage(Scope(client, request))).handle(scim_request)
        except SCIMException as exception:
            logger.info("saml_jit SCIM %s %s: %s %s", request.method, path, exception.status, exception.scim_type)
            response = scim.error_response(exception)
        except Exception as exception:
            logger.exception("saml_jit SCIM %s %s failed", request.method, path)
            response = scim.error_response(exception)
        response.headers.setdefault("Location", scim_request.url)
        response.headers.setdefault("Cache-Control", "no-cache")
        return to_django(response)

    @staticmethod
    def scim_request(request: HttpRequest, path: str) -> ScimRequest:
        prefix = request.path[: len(request.path) - len(path)] if path else request.path
        return ScimRequest(
            method=request.method or "GET",
            base_url=request.build_absolute_uri(prefix).rstrip("/"),
            path="/" + path,
            query=request.GET.dict(),
            headers=list(request.headers.items()),
            subject=None,
        )


def read_body(request: HttpRequest) -> bytes:
    """The body, refused with a 413 past ``SCIM_MAX_BODY`` before it is read whole."""
    limit = conf.max_body()
    too_large = PayloadTooLargeException(detail=f"The request body is larger than {limit} bytes.")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    body = request.read(limit + 1)
    if len(body) > limit:
        raise too_large
    return body


def to_django(response: ScimResponse) -> HttpResponse:
    content = b"" if response.body is None else json.dumps(response.body).encode()
    django_response = HttpResponse(content, status=int(response.status))
    for name, value in response.headers.items():
        django_response[name] = value
    return django_response
