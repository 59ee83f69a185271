"""Settings, all from the environment (django-environ).

Nothing set: SQLite and the local CA under POWERNODE_VAR_DIR (default ``var/`` in the checkout).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

VAR_DIR = Path(env.str("POWERNODE_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _dev_secret(name: str) -> str:
    """A secret made on first run and kept under VAR_DIR (never committed)."""
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or _dev_secret("secret_key")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["*"] if DEBUG else ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "powernode",  # the kernel's template tags (powernode/templatetags): badges every app's admin uses
    "apps.events",
    "apps.nodes",
    "apps.modules",
    "apps.sdwan",
    "apps.pki",
    "apps.docker_hosts",
    "apps.system",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # static files (admin, Swagger UI from the sidecar, our CSS/JS) under uvicorn/gunicorn too
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "powernode.urls"
WSGI_APPLICATION = "powernode.wsgi.application"
ASGI_APPLICATION = "powernode.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'powernode.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent writers (agents, operators) wait for the lock instead of failing at once.
    # IMMEDIATE: a writing transaction takes the lock up front, so two writers queue instead of
    # deadlocking on the read-to-write upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# serve straight from the apps' static dirs too, so a fresh checkout works before collectstatic
WHITENOISE_USE_FINDERS = True

DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("POWERNODE_MAX_BODY_BYTES", default=256 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.system.authentication.OperatorTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.system.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "powernode API",
    "DESCRIPTION": "Operator actions, agent protocol and read-only resources of powernode.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.system.openapi.add_action_paths",
    ],
}

# How often agents should call in; the platform tells them in every heartbeat answer.
POWERNODE_HEARTBEAT_INTERVAL_S = env.int("POWERNODE_HEARTBEAT_INTERVAL_S", default=60)

# wants_cert per instance: at most this many server certificates in the window (a stolen agent token
# must not mint certificates in bulk); counted from IssuedCertificate rows, so it holds across processes.
POWERNODE_WANTS_CERT_LIMIT = env.int("POWERNODE_WANTS_CERT_LIMIT", default=10)
POWERNODE_WANTS_CERT_WINDOW_S = env.int("POWERNODE_WANTS_CERT_WINDOW_S", default=600)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("POWERNODE_LOG_LEVEL", default="WARNING")},
}

# Key for secrets encrypted at rest (Fernet). Empty in development: one is made under VAR_DIR.
POWERNODE_ENCRYPTION_KEY = env.str("POWERNODE_ENCRYPTION_KEY", default="")
if not DEBUG and not POWERNODE_ENCRYPTION_KEY:
    # refuse here, not only in a system check: gunicorn/uvicorn do not run checks
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "POWERNODE_ENCRYPTION_KEY is not set: production (DJANGO_DEBUG=false) refuses to store private keys "
        "with a development key. Generate one: python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'"
    )

FIXTURE_DIRS = [BASE_DIR / "fixtures"]

# Internal CA (apps.pki): Vault/OpenBao when VAULT_ADDR and VAULT_TOKEN are set, else the local CA files.
VAULT_ADDR = env.str("VAULT_ADDR", default="")
VAULT_TOKEN = env.str("VAULT_TOKEN", default="")
VAULT_PKI_MOUNT = env.str("VAULT_PKI_MOUNT", default="pki_int")
VAULT_PKI_ROLE = env.str("VAULT_PKI_ROLE", default="node")
VAULT_PKI_ROOT_MOUNT = env.str("VAULT_PKI_ROOT_MOUNT", default="pki")
VAULT_KV_MOUNT = env.str("VAULT_KV_MOUNT", default="secret")
VAULT_TIMEOUT = env.float("VAULT_TIMEOUT", default=10.0)
PKI_LOCAL_CA_DIR = Path(env.str("PKI_LOCAL_CA_DIR", default=str(VAR_DIR / "pki")))
