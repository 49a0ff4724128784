from django.apps import AppConfig


class SandboxHullConfig(AppConfig):
    name = "sandbox.hull"
    label = "sandbox_hull"
    verbose_name = "Sandbox: Hull organization"
