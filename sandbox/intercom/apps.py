from django.apps import AppConfig


class SandboxIntercomConfig(AppConfig):
    name = "sandbox.intercom"
    label = "sandbox_intercom"
    verbose_name = "Sandbox: Intercom workspace"
