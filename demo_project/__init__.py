"""A runnable demo site for saml_jit, with an embedded SAML IdP."""
