from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Inbound endpoints"

    def ready(self) -> None:
        # Counts every Intercom call of this process (web or qcluster) for /metrics.
        from webhooks.metrics import install_call_recorder

        install_call_recorder()
