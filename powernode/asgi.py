"""ASGI entry point (uvicorn powernode.asgi:application)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "powernode.settings")
application = get_asgi_application()
