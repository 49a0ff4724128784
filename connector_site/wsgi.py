import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector_site.settings")
# The web process (gunicorn's threads) keeps its SQLite connections between requests; workers and
# management commands do not import this module and close theirs (connector_site/settings.py).
os.environ.setdefault("SQLITE_CONN_MAX_AGE", "60")
application = get_wsgi_application()
