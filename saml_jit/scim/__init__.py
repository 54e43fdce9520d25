"""A SCIM 2.0 service provider (RFC 7643/7644), scoped per identity provider.

The protocol (routing, validation, filters, PATCH, errors, discovery) is
``scim2-server`` and ``scim2-models``; this package connects them to Django:

* :mod:`.auth` — checking the bearer token of a request against the
  :class:`~saml_jit.models.ScimClient` tokens (minted by :mod:`saml_jit.tokens`);
* :mod:`.resources` — the User and Group schemas served;
* :mod:`.filters` — a filter tree to a Django ``Q``;
* :mod:`.users`, :mod:`.groups` (and :mod:`.common`) — Django users and
  groups to SCIM resources and back, validated like SAML attributes, written
  through :mod:`saml_jit.provisioning` (the same account, identity and
  lifecycle functions as a SAML login);
* :mod:`.profiles` — ``displayName``, the client's ``externalId`` and the
  enterprise extension attributes, kept per identity;
* :mod:`.members` — a Group PATCH's member operations, applied in SQL (the
  cost follows the members changed, not the group's size);
* :mod:`.dialects` — the forms Entra ID sends that the library would read
  otherwise, rewritten before it reads them;
* :mod:`.storage` — the scoped storage the protocol handler calls;
* :mod:`.views`, :mod:`.urls` — the Django view (ETags, 204 for group PATCH).

Include ``saml_jit.scim.urls`` under the prefix you want, e.g.
``path("scim/v2/", include("saml_jit.scim.urls"))``. SCIM needs the ``scim``
extra: ``pip install saml-jit[scim]``.
"""
