"""Work bounds: how much a document may make saml_jit do before its signature is checked.

pysaml2 turns a whole response into Python objects before it verifies any
signature, at about 0.1 ms per element, and does it twice for an unsigned
response: a 512 KB document of 8,000 ``AttributeValue`` elements costs a
second of CPU, fifty normal logins, for whoever can send a POST. The size
is bounded before base64 decoding (``MAX_RESPONSE_SIZE``); :func:`parse` then
bounds the shape, in C speed and stopping at the first bound exceeded:

* elements in the document (:attr:`Bounds.elements`),
* nesting depth (:attr:`Bounds.depth`),
* ``saml:AttributeValue`` elements (:attr:`Bounds.attribute_values`),
* XML attributes and namespace declarations (:attr:`Bounds.attributes`).

The same bounds hold for a decrypted assertion (the SP's encryption
certificate is public: anyone can encrypt a hostile assertion for it), see
:mod:`saml_jit.saml.decryption`. There is no separate bound on text: the
total size is, and a ``CipherValue`` legitimately holds most of a document.

The defaults leave a wide margin over what real IdPs send: Entra ID never
lists more than 150 groups (it sends an overage claim instead), Okta at most
100, and a Shibboleth response with an encrypted assertion and 40 attributes
has about 150 elements; a worst-case document within the bounds costs less
than ten normal logins (see README, *Performance*).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from lxml import etree

__all__ = ["DEFAULT_BOUNDS", "Bounds", "DoctypeFound", "NotWellFormed", "TooComplex", "parse"]

ATTRIBUTE_VALUE = "{urn:oasis:names:tc:SAML:2.0:assertion}AttributeValue"

#: Bytes libxml2 parses before saml_jit counts again: small, so that a
#: document far over a bound stops after a few kilobytes.
_CHUNK = 16 * 1024


@dataclass(frozen=True)
class Bounds:
    """Largest shape of a document accepted before its signature is verified."""

    #: Elements in the whole document (a Shibboleth response: ~150).
    elements: int = 1200
    #: Nesting depth (SAML needs about 12, with an encrypted key and Advice).
    depth: int = 32
    #: ``saml:AttributeValue`` elements (Entra: at most ~170 with 150 groups).
    attribute_values: int = 1000
    #: XML attributes plus namespace declarations, over all elements (~2 per element).
    attributes: int = 2500


DEFAULT_BOUNDS = Bounds()


class TooComplex(ValueError):
    """A bound was exceeded. ``root`` is the part of the tree parsed until then."""

    def __init__(self, what: str, limit: int, root: etree._Element | None) -> None:
        super().__init__(f"more than {limit} {what}")
        self.what, self.limit, self.root = what, limit, root


class DoctypeFound(ValueError):
    """The document has a document type declaration (never needed, never accepted)."""


class NotWellFormed(ValueError):
    """The bytes are not a well-formed XML document."""


class _Counter:
    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self.elements = self.depth = self.values = self.attributes = 0
        self.root: etree._Element | None = None

    def start(self, element: etree._Element) -> None:
        if self.root is None:
            self.root = element
            info = element.getroottree().docinfo
            if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
                raise DoctypeFound("XML with a document type declaration is refused")
        self.elements += 1
        self.depth += 1
        self.attributes += len(element.attrib)
        if element.tag == ATTRIBUTE_VALUE:
            self.values += 1
        bounds = self.bounds
        if (  # per element, so compared inline; _check says which bound
            self.elements > bounds.elements
            or self.depth > bounds.depth
            or self.values > bounds.attribute_values
            or self.attributes > bounds.attributes
        ):
            self._check()

    def _check(self) -> None:
        bounds = self.bounds
        for what, count, limit in (
            ("elements", self.elements, bounds.elements),
            ("levels of nesting", self.depth, bounds.depth),
            ("AttributeValue elements", self.values, bounds.attribute_values),
            ("attributes and namespace declarations", self.attributes, bounds.attributes),
        ):
            if count > limit:
                raise TooComplex(what, limit, self.root)


def parse(document: bytes, bounds: Bounds | None = None) -> etree._Element:
    """Parse untrusted XML within ``bounds`` (default :data:`DEFAULT_BOUNDS`); return the root element.

    Raises :class:`TooComplex`, :class:`DoctypeFound` or :class:`NotWellFormed`.
    Never resolves an entity, loads a DTD or touches the network.
    """
    counter = _Counter(bounds or DEFAULT_BOUNDS)
    events = etree.iterparse(
        io.BytesIO(document),
        events=("start", "end", "start-ns"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        chunk_size=_CHUNK,
    )
    try:
        for event, item in events:
            if event == "start":
                counter.start(item)
            elif event == "end":
                counter.depth -= 1
            else:  # start-ns: a namespace declaration
                counter.attributes += 1
    except etree.XMLSyntaxError as exc:
        raise NotWellFormed(f"XML could not be parsed: {exc}") from None
    if counter.root is None:
        raise NotWellFormed("no root element")
    return events.root
