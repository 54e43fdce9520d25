from __future__ import annotations

from django.apps import AppConfig


class DemoIdpConfig(AppConfig):
    name = "demo_project.demo_idp"
    label = "demo_idp"
    verbose_name = "Demo IdP"
