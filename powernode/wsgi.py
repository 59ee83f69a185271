"""WSGI entry point (gunicorn powernode.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "powernode.settings")
application = get_wsgi_application()
