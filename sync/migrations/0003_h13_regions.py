"""Issue 13 item 3 / issue 18 item 3: a region instead of a free Intercom API base.

Existing API bases become a region (api.eu.intercom.io -> eu, api.au.intercom.io -> au, anything
else on Intercom -> us). A sandbox base (".../sandbox/intercom") and a sandbox firehose are kept:
they are used only while SANDBOX_ENABLED is on. Any other host is dropped (it could only have
been a way to send the token elsewhere); organizations given as URLs become their host name.
"""

from urllib.parse import urlsplit

import sync.models
from django.db import migrations, models

_REGION_HOSTS = {"api.intercom.io": "us", "api.eu.intercom.io": "eu", "api.au.intercom.io": "au"}


def forwards(apps, schema_editor):
    Connector = apps.get_model("sync", "Connector")
    for connector in Connector.objects.all():
        base = (connector.intercom_api_base or "").rstrip("/")
        host = (urlsplit(base).hostname or "").lower() if base else ""
        if host in _REGION_HOSTS:
            connector.intercom_region = _REGION_HOSTS[host]
            connector.intercom_api_base = ""
        elif base and not base.endswith("/sandbox/intercom"):
            connector.intercom_api_base = ""
        firehose = (connector.hull_firehose_url or "").rstrip("/")
        if firehose and not firehose.endswith("/sandbox/hull/firehose"):
            connector.hull_firehose_url = ""
        organization = (connector.hull_organization or "").strip()
        if "://" in organization:
            connector.hull_organization = (urlsplit(organization).hostname or "").lower()
        connector.save(update_fields=["intercom_region", "intercom_api_base", "hull_firehose_url", "hull_organization"])


class Migration(migrations.Migration):

    dependencies = [
        ('sync', '0002_help_texts_without_angle_brackets'),
    ]

    operations = [
        migrations.AddField(
            model_name='connector',
            name='intercom_region',
            field=models.CharField(choices=[('us', 'United States'), ('eu', 'Europe'), ('au', 'Australia')], default='us', help_text='Where the Intercom workspace is hosted (its address: app.intercom.com is the United States, app.eu.intercom.com Europe, app.au.intercom.com Australia). Choose it before connecting.', max_length=2, verbose_name='Intercom region'),
        ),
        migrations.AlterField(
            model_name='connector',
            name='hull_firehose_url',
            field=models.URLField(blank=True, editable=False, help_text="Demo only: the Hull sandbox's firehose, used while SANDBOX_ENABLED is on."),
        ),
        migrations.AlterField(
            model_name='connector',
            name='hull_organization',
            field=models.CharField(blank=True, help_text='Hull organization host name, e.g. "acme.hullapp.io" (no https://, no path). Hull\'s API and firehose are found from it.', max_length=255, validators=[sync.models.validate_hull_organization]),
        ),
        migrations.AlterField(
            model_name='connector',
            name='intercom_api_base',
            field=models.URLField(blank=True, editable=False, help_text="Demo only: the Intercom sandbox's API, used while SANDBOX_ENABLED is on."),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
