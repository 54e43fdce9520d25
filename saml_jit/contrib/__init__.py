"""Optional apps shipped with saml_jit; none is needed in production."""
