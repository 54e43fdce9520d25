"""Encrypted responses every product in the benchmark can read.

The test IdP encrypts the assertion as pysaml2 does: the plaintext declares
its own namespace prefixes (``encas0``, ``encas2``…). python3-saml (hence
django-allauth) decrypts the ``EncryptedData`` out of its document and grafts
the result back, and lxml then renames those prefixes to the ones the
Response declares, which changes the exclusive canonical form the
assertion's signature covers: allauth refuses every such response ("Signature
validation failed"). So the benchmark encrypts the signed assertion as it sits
in the document (its prefixes are the Response's), then signs the Response
again over the result: the same keys, algorithms (AES-256-GCM, RSA-OAEP) and
signatures, a shape all three products accept.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from lxml import etree

from saml_jit.testing import Encryption
from saml_jit.testing.encryption import encrypted_data
from tests.federation import IDP_A

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
RESPONSE_NODE = "urn:oasis:names:tc:SAML:2.0:protocol:Response"


def post_data(cert_file: str | Path | None, **spec: Any) -> dict[str, str]:
    """IdP A's signed answer (``spec`` as for ``TestIdP.make_response``), its assertion encrypted for ``cert_file``."""
    xml = IDP_A.make_response(**spec)
    if cert_file is not None:
        root = etree.fromstring(xml.encode("utf-8"))
        assertion = root.find(f"{{{SAML}}}Assertion")
        wrapper = etree.Element(f"{{{SAML}}}EncryptedAssertion")
        assertion.addprevious(wrapper)
        plaintext = etree.tostring(assertion)
        wrapper.append(encrypted_data(plaintext, Path(cert_file).read_bytes(), Encryption()))
        root.remove(assertion)
        document = etree.tostring(root, encoding="unicode")
        xml = IDP_A.server.sec.sign_statement(document, RESPONSE_NODE, key_file=IDP_A.key_file, node_id=root.get("ID"))
    return {"SAMLResponse": base64.b64encode(xml.encode("utf-8")).decode("ascii")}
