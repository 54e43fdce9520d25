"""Hostile documents: a minted response, inflated where pysaml2's work grows.

For the work-bound tests and ``python -m bench hostile``. Each function takes
and returns the XML of a response (or of an assertion), so it serves as a
``tamper=`` of :class:`~saml_jit.testing.responses.ResponseSpec`, after
signing (the inflation breaks the signature, as an attacker's would), or
inside an ``Encryption(plaintext=...)`` (bytes: see :func:`as_plaintext`)::

    idp.post_data(spec, sign_response=False, tamper=lambda xml: with_attribute_values(xml, 8000))
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

__all__ = [
    "as_plaintext",
    "nested",
    "with_attribute_values",
    "with_attributes",
    "with_extensions",
    "with_xml_attributes",
]

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"


def _edit(xml: str, change: Callable[[etree._Element], None]) -> str:
    root = etree.fromstring(xml.encode("utf-8"))
    change(root)
    return etree.tostring(root, encoding="unicode")


def _first(root: etree._Element, tag: str) -> etree._Element:
    found = root if root.tag == tag else next(root.iter(tag), None)
    if found is None:
        raise ValueError(f"no {tag} to inflate")
    return found


def with_attribute_values(xml: str, count: int, text: str = "v") -> str:
    """``count`` more ``AttributeValue`` elements in the first ``Attribute``: pysaml2's costliest element."""

    def change(root: etree._Element) -> None:
        attribute = _first(root, f"{{{SAML}}}Attribute")
        for _ in range(count):
            etree.SubElement(attribute, f"{{{SAML}}}AttributeValue").text = text

    return _edit(xml, change)


def with_attributes(xml: str, count: int, xml_attributes: int = 1) -> str:
    """``count`` more empty ``Attribute`` elements, each with ``xml_attributes`` attributes (Name first)."""

    def change(root: etree._Element) -> None:
        statement = _first(root, f"{{{SAML}}}AttributeStatement")
        for i in range(count):
            extra = {f"x{j}": "1" for j in range(xml_attributes - 1)}
            statement.insert(0, etree.Element(f"{{{SAML}}}Attribute", {"Name": f"urn:x:{i}", **extra}))

    return _edit(xml, change)


def with_xml_attributes(xml: str, count: int) -> str:
    """``count`` XML attributes on the first ``AttributeValue``."""

    def change(root: etree._Element) -> None:
        value = _first(root, f"{{{SAML}}}AttributeValue")
        for i in range(count):
            value.set(f"a{i}", "x")

    return _edit(xml, change)


def nested(xml: str, depth: int) -> str:
    """``depth`` nested elements inside the first ``AttributeValue`` (it is ``xs:anyType``)."""

    def change(root: etree._Element) -> None:
        parent = _first(root, f"{{{SAML}}}AttributeValue")
        for _ in range(depth):
            parent = etree.SubElement(parent, "e")

    return _edit(xml, change)


def with_extensions(xml: str, count: int) -> str:
    """``count`` unknown elements in a ``samlp:Extensions`` of the Response."""

    def change(root: etree._Element) -> None:
        extensions = etree.Element(f"{{{SAMLP}}}Extensions")
        _first(root, f"{{{SAMLP}}}Status").addprevious(extensions)
        for _ in range(count):
            etree.SubElement(extensions, "e")

    return _edit(xml, change)


def as_plaintext(inflate: Callable[[str], str]) -> Callable[[bytes], bytes]:
    """One of the above as an ``Encryption(plaintext=...)``: the assertion, inflated, then encrypted."""
    return lambda assertion: inflate(assertion.decode("utf-8")).encode("utf-8")
