"""The storage scim2-server calls: Django models, scoped to one SCIM client."""

from __future__ import annotations

from typing import Any

from scim2_models import NotImplementedException, Resource, ResourceType, ResponseParameters, SearchRequest
from scim2_server.storage import ScimStorage, SearchPage

from .common import Scope
from .filters import to_q
from .groups import Groups
from .members import is_members
from .users import Users


def wants_members(parameters: Any) -> bool:
    """Whether a response with these ``attributes``/``excludedAttributes`` shows a group's members."""
    if parameters is None:
        return True
    named = [str(path).split(".")[0].split("[")[0] for path in parameters.attributes or []]
    if named:
        return any(is_members(name) for name in named)
    return not any(is_members(str(path)) for path in parameters.excluded_attributes or [])


class DjangoStorage(ScimStorage):
    """Users and groups of the client's IdP, read and written through the adapters."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.users = Users(scope)
        self.groups = Groups(scope, self.users)

    def _adapter(self, resource_type: ResourceType) -> Users | Groups:
        return self.users if resource_type.name == "User" else self.groups

    def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        if resource_type.name == "User":
            return self.users.to_resource(self.users.get_user(resource_id))
        group = self.groups.get_group(resource_id, members=wants_members(response_parameters))
        return self.groups.to_resource(group)

    def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        if len(resource_types) != 1:
            raise NotImplementedException(detail="Searching several resource types at once is not supported.")
        adapter = self._adapter(resource_types[0])
        start = max((search_request.start_index or 1) - 1, 0)
        if adapter is self.users and search_request.filter is None:
            # Listing every user (Okta's import): index-only queries, whatever the page.
            total, page = self.users.listing(start, search_request.count)
            return SearchPage(total=total, resources=[self.users.to_resource(user) for user in page])
        queryset = (
            self.users.queryset() if adapter is self.users else self.groups.queryset(wants_members(search_request))
        )
        if search_request.filter is not None:
            queryset = queryset.filter(to_q(search_request.filter.ast, adapter.columns()))
        total = queryset.count()
        count = search_request.count if search_request.count is not None else total
        page = list(queryset[start : start + count]) if count > 0 else []
        to_resource = adapter.to_resource
        return SearchPage(total=total, resources=[to_resource(obj) for obj in page])

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        return self._adapter(resource_type).create(resource)

    def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        return self._adapter(resource_type).update(resource, expected_version)

    def delete(self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None) -> None:
        self._adapter(resource_type).delete(resource_id)
