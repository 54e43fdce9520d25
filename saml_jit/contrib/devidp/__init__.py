"""A development SAML IdP that any project switches on, for local sign-in without a real IdP.

Never for production: it lets whoever reaches it sign in as anyone, and a
system check (``saml_jit.devidp.E001``) refuses it unless ``DEBUG`` is on.

Switch it on in three places::

    # settings.py
    from saml_jit.config import saml_config
    from saml_jit.contrib import devidp

    INSTALLED_APPS = [..., "djangosaml2", "saml_jit", "saml_jit.contrib.devidp"]
    SAML_CONFIG = saml_config(
        base_url="http://localhost:8000",
        keys_dir=BASE_DIR / ".saml_jit" / "keys",
        idp_metadata_xml=devidp.metadata("http://localhost:8000"),  # trust the dev IdP
    )

    # urls.py
    path("devidp/", include("saml_jit.contrib.devidp.urls")),

The IdP trusts the local SP from the SP's own metadata (no exchange by
hand), answers SP-initiated logins (HTTP-Redirect or HTTP-POST AuthnRequest,
HTTP-POST signed response to the ACS) and single logout, and signs
in-process with :class:`saml_jit.testing.idp.TestIdP`. Its key is made at
run time: in ``keys_dir`` if given (kept across restarts), else in a private
temporary folder of this process — fine for ``runserver``, which serves from
one process; give a ``keys_dir`` to run several processes.

The people it offers come from ``SAML_DEVIDP_PERSONS`` (see
:mod:`saml_jit.contrib.devidp.persons`) or its built-in three; the pages at
``/devidp/`` let you edit their attributes and groups (kept in a signed
cookie of this browser, never in the database).
"""

from __future__ import annotations

from .idp import metadata

__all__ = ["metadata"]
