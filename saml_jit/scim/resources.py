"""The resources served: RFC 7643's User and Group, cut to what is stored.

The published schemas (``/Schemas``) list only the attributes saml_jit keeps,
so clients and compliance checkers never write an attribute that would be
silently lost. Attributes outside them (``password``, ``roles``,
``entitlements``, enterprise extension fields, anything naming a privilege)
are dropped on input by the ``unknown=ignore`` policy — the tolerant choice,
since Entra ID and Okta send many of them by default — and never reach a
model field.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    External,
    Filter,
    Group,
    Mutability,
    Patch,
    Reference,
    Resource,
    ResourceType,
    Schema,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    User,
)

#: Attribute -> kept sub-attributes (None: a simple attribute), and mutability overrides.
USER_ATTRIBUTES: dict[str, frozenset[str] | None] = {
    "userName": None,
    "name": frozenset({"givenName", "familyName"}),
    "displayName": None,
    "active": None,
    "emails": frozenset({"value", "type", "primary"}),
    "groups": frozenset({"value", "$ref", "display", "type"}),
}
GROUP_ATTRIBUTES: dict[str, frozenset[str] | None] = {
    "displayName": None,
    # No members.display: it would be computed, and clients compare it.
    "members": frozenset({"value", "$ref", "type"}),
}
#: Computed on output, ignored on input.
READ_ONLY = {("User", "displayName")}

BEARER = AuthenticationScheme(
    type=AuthenticationScheme.Type.oauthbearertoken,
    name="OAuth Bearer Token",
    description="A bearer token created with manage.py saml_jit_scim_token or in the admin.",
    spec_uri=Reference[External]("https://www.rfc-editor.org/rfc/rfc6750"),
    primary=True,
)


def _read_only(attribute: Any) -> Any:
    return attribute.model_copy(update={"mutability": Mutability.read_only})


def _trim(schema: Schema, name: str, keep: dict[str, frozenset[str] | None]) -> Schema:
    attributes = []
    for attribute in schema.attributes or []:
        if attribute.name not in keep:
            continue
        subs = keep[attribute.name]
        if subs is not None:
            sub_attributes = [
                _read_only(sub) if (name, f"{attribute.name}.{sub.name}") in READ_ONLY else sub
                for sub in attribute.sub_attributes or []
                if sub.name in subs
            ]
            attribute = attribute.model_copy(update={"sub_attributes": sub_attributes})
        if (name, attribute.name) in READ_ONLY:
            attribute = _read_only(attribute)
        attributes.append(attribute)
    return schema.model_copy(update={"attributes": attributes})


@lru_cache(maxsize=1)
def models() -> tuple[type[Resource[Any]], type[Resource[Any]]]:
    """The User and Group models built from the trimmed schemas."""
    user = Resource.from_schema(_trim(User.to_schema(), "User", USER_ATTRIBUTES))
    group = Resource.from_schema(_trim(Group.to_schema(), "Group", GROUP_ATTRIBUTES))
    return user, group


def user_model() -> type[Resource[Any]]:
    return models()[0]


def group_model() -> type[Resource[Any]]:
    return models()[1]


def service_provider_config(page_size: int) -> ServiceProviderConfig:
    return ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=page_size),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[BEARER],
    )


@lru_cache(maxsize=8)
def provider(page_size: int) -> ScimProvider:
    user, group = models()
    return ScimProvider(
        models=[user, group],
        resource_types=[
            ResourceType.from_resource(user).model_copy(update={"description": "Users of one identity provider"}),
            ResourceType.from_resource(group).model_copy(
                update={"description": "Groups one identity provider manages"}
            ),
        ],
        config=service_provider_config(page_size),
        # Entra ID and Okta send attributes beyond the served schemas; they are
        # dropped, not refused. Entra's PATCH dialect (remove with a value,
        # a filter that creates the entry it names) is accepted.
        policy=ScimPolicy(
            unknown=ScimPolicy.Unknown.ignore,
            remove_value_as_filter=ScimPolicy.RemoveValue.apply,
            unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
        ),
    )
