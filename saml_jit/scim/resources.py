"""The resources served: RFC 7643's User (with the enterprise extension) and Group, cut to what is stored.

The published schemas (``/Schemas``) list only the attributes saml_jit keeps,
so clients and compliance checkers never write an attribute that would be
silently lost. Attributes outside them (``password``, ``roles``,
``entitlements``, ``phoneNumbers``, anything naming a privilege) are dropped
on input by the ``unknown=ignore`` policy — the tolerant choice, since Entra
ID and Okta send many of them by default — and never reach a model field.
``displayName`` and the enterprise attributes Entra ID maps by default
(``employeeNumber``, ``department``, ``manager``…) are kept as sent
(:class:`~saml_jit.models.ScimProfile`), so a client that compares what it
sent with what it reads back sees no difference to resend.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    EnterpriseUser,
    ETag,
    Extension,
    External,
    Filter,
    Group,
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

#: Attribute -> kept sub-attributes (None: a simple attribute).
USER_ATTRIBUTES: dict[str, frozenset[str] | None] = {
    "userName": None,
    "name": frozenset({"givenName", "familyName"}),
    "displayName": None,
    "active": None,
    "emails": frozenset({"value", "type", "primary"}),
    "groups": frozenset({"value", "$ref", "display", "type"}),
}
#: The enterprise extension (RFC 7643 §4.3) without manager.displayName, which
#: would be computed (the manager may not even be provisioned yet).
ENTERPRISE_ATTRIBUTES: dict[str, frozenset[str] | None] = {
    "employeeNumber": None,
    "costCenter": None,
    "organization": None,
    "division": None,
    "department": None,
    "manager": frozenset({"value", "$ref"}),
}
ENTERPRISE = str(EnterpriseUser.__schema__)
#: The enterprise attributes, lower case (a filter may name them without their URN).
ENTERPRISE_NAMES = frozenset(name.lower() for name in ENTERPRISE_ATTRIBUTES)
GROUP_ATTRIBUTES: dict[str, frozenset[str] | None] = {
    "displayName": None,
    # No members.display: it would be computed, and clients compare it.
    "members": frozenset({"value", "$ref", "type"}),
}

BEARER = AuthenticationScheme(
    type=AuthenticationScheme.Type.oauthbearertoken,
    name="OAuth Bearer Token",
    description="A bearer token created with manage.py saml_jit_scim_token or in the admin.",
    spec_uri=Reference[External]("https://www.rfc-editor.org/rfc/rfc6750"),
    primary=True,
)


#: Sub-attributes made optional: clients send the manager's id alone (``$ref`` is ours to fill in).
OPTIONAL = {("manager", "$ref")}


def _trim(schema: Schema, keep: dict[str, frozenset[str] | None]) -> Schema:
    attributes = []
    for attribute in schema.attributes or []:
        if attribute.name not in keep:
            continue
        subs = keep[attribute.name]
        if subs is not None:
            sub_attributes = [
                sub.model_copy(update={"required": False}) if (attribute.name, sub.name) in OPTIONAL else sub
                for sub in attribute.sub_attributes or []
                if sub.name in subs
            ]
            attribute = attribute.model_copy(update={"sub_attributes": sub_attributes})
        attributes.append(attribute)
    return schema.model_copy(update={"attributes": attributes})


@lru_cache(maxsize=1)
def models() -> tuple[type[Resource[Any]], type[Extension], type[Resource[Any]]]:
    """The bare User, the enterprise extension and the Group, built from the trimmed schemas."""
    user = Resource.from_schema(_trim(User.to_schema(), USER_ATTRIBUTES))
    enterprise = Extension.from_schema(_trim(EnterpriseUser.to_schema(), ENTERPRISE_ATTRIBUTES))
    group = Resource.from_schema(_trim(Group.to_schema(), GROUP_ATTRIBUTES))
    return user, enterprise, group


def user_model() -> type[Resource[Any]]:
    """The User with its enterprise extension (parameterized classes are cached: always the same class)."""
    user, enterprise, _ = models()
    return user[enterprise]  # type: ignore[index,no-any-return]


def enterprise_model() -> type[Extension]:
    return models()[1]


def group_model() -> type[Resource[Any]]:
    return models()[2]


def references(resource: Resource[Any]) -> list[Any]:
    """The entries of a served resource that hold a ``$ref``: its groups or members, and its manager."""
    entries = [*(getattr(resource, "groups", None) or []), *(getattr(resource, "members", None) or [])]
    # The extension is a field named after its class (resource[Extension] resolves a path: slower).
    manager = getattr(getattr(resource, enterprise_model().__name__, None), "manager", None)
    if manager is not None:
        entries.append(manager)
    return [entry for entry in entries if getattr(entry, "ref", None)]


def service_provider_config(page_size: int) -> ServiceProviderConfig:
    return ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=page_size),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        # Weak ETags: meta.version, the ETag header, If-Match (412 when stale)
        # and If-None-Match on every resource.
        etag=ETag(supported=True),
        authentication_schemes=[BEARER],
    )


@lru_cache(maxsize=8)
def provider(page_size: int) -> ScimProvider:
    user, enterprise, group = models()
    return ScimProvider(
        models=[user, enterprise, group],
        resource_types=[
            ResourceType.from_resource(user_model()).model_copy(
                update={"description": "Users of one identity provider"}
            ),
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
