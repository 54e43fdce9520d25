"""Everything that touches XML or pysaml2.

Configuration (:mod:`.config`), in-process crypto (:mod:`.backend`,
:mod:`.keys`, :mod:`.security`, :mod:`.adapter`), schema validation
(:mod:`.schema`), work bounds on untrusted documents (:mod:`.bounds`), the
accepted encryption algorithms (:mod:`.encryption`), decryption without an
oracle (:mod:`.decryption`), response and logout checks (:mod:`.response`,
:mod:`.logout`), failure classification (:mod:`.errors`), SAML's identifier
length limits (:mod:`.limits`) and assertion extraction (:mod:`.assertions`,
into :class:`.data.AssertionData`).

pysaml2 itself is changed only while the in-process backend is selected
(``SAML_JIT["CRYPTO_BACKEND"] == "xmlsec"``, see :mod:`.adapter`); importing
this package patches nothing.

This layer imports no models, no policy and no provisioning (an import-linter
contract enforces it): it answers "is this message valid, and what does it
say", never "who may come in".
"""
