"""SAML single sign-on with just-in-time provisioning and lifecycle for Django."""

__version__ = "0.1.0.dev0"
