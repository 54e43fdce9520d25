"""The demo's embedded SAML IdP (built on ``saml_jit.testing.idp.TestIdP``).

For demonstration only: it lets anyone pick who they are.
"""
