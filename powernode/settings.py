"""Settings, all from the environment (django-environ); every variable is listed in ``.env.example``.

Production by default: ``DJANGO_DEBUG`` is false and the process refuses to start without
``DJANGO_SECRET_KEY`` and ``POWERNODE_ENCRYPTION_KEY``. Development (``DJANGO_DEBUG=true``, what
``make run`` and the tests opt into) makes its keys on first run under POWERNODE_VAR_DIR (default ``var/``
in the checkout), beside the SQLite database and the local CA.
"""

from __future__ import annotations

import datetime
import os
import secrets
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from powernode import __version__ as POWERNODE_VERSION
from powernode.secretfiles import create_private_file, private_dir, read_or_create_secret

BASE_DIR = Path(__file__).resolve().parent.parent
# A checkout (manage.py beside the package) keeps templates/, static/ and fixtures/ at its root; an installed
# copy (pip install, powernode-admin) has them in the package (setup.py) and no var/ of its own.
CHECKOUT = (BASE_DIR / "manage.py").is_file()
RESOURCES_DIR = BASE_DIR if CHECKOUT else Path(__file__).resolve().parent / "_bundled"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if CHECKOUT and (BASE_DIR / ".env").exists() else None

# Secrets live here (dev keys, the admin password, the SQLite database): only its owner may enter.
_var_dir = env.str("POWERNODE_VAR_DIR", default=str(BASE_DIR / "var") if CHECKOUT else "")
if not _var_dir:
    raise ImproperlyConfigured(
        "POWERNODE_VAR_DIR is not set: an installed powernode keeps its SQLite database, local CA, static files "
        "and development keys there. Set it, e.g. POWERNODE_VAR_DIR=/var/lib/powernode."
    )
VAR_DIR = private_dir(Path(_var_dir).resolve())

DEBUG = env.bool("DJANGO_DEBUG", default=False)


def _required_in_production(name: str, hint: str) -> str:
    # refuse here, not only in a system check: gunicorn/uvicorn do not run checks
    value = env.str(name, default="")
    if not value and not DEBUG:
        raise ImproperlyConfigured(
            f"{name} is not set: production (DJANGO_DEBUG=false, the default) refuses to start without it. "
            f"{hint} For development, set DJANGO_DEBUG=true (make run does)."
        )
    return value


SECRET_KEY = _required_in_production(
    "DJANGO_SECRET_KEY", "Generate one: python -c 'import secrets; print(secrets.token_urlsafe(50))'."
) or read_or_create_secret(VAR_DIR / "secret_key", lambda: secrets.token_urlsafe(50))
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])
# production without the variable answers only loopback names: `check --deploy` warns (powernode.W001)
POWERNODE_ALLOWED_HOSTS_DEFAULTED = not ALLOWED_HOSTS
ALLOWED_HOSTS = ALLOWED_HOSTS or (["*"] if DEBUG else ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS. Cookies are Secure outside development; HSTS and the redirect are the deployment's choice (a
# TLS-terminating proxy in front sets DJANGO_SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO).
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
_proxy_ssl_header = env.str("DJANGO_SECURE_PROXY_SSL_HEADER", default="")  # trust it only behind such a proxy
SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header, "https") if _proxy_ssl_header else None

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
    "axes",  # locks the admin login after repeated failures (AXES_* below)
    "powernode",  # the kernel's template tags (powernode/templatetags): badges every app's admin uses
    "apps.events",
    "apps.nodes",
    "apps.modules",
    "apps.sdwan",
    "apps.pki",
    "apps.docker_hosts",
    "apps.system",
]

# Served (powernode.handlers): Django's own classes here run as in-loop twins, and a request a `sessionless`
# view accepts (Bearer JSON actions, heartbeats, hub syncs) skips handlers.SESSION_MIDDLEWARE (sessions, CSRF,
# auth, messages, axes); any middleware added here runs for every request.
MIDDLEWARE = [
    # first: /healthz, /readyz and /metrics answer whatever the Host header, over plain HTTP, with no session
    "powernode.middleware.ProbeEndpointsMiddleware",
    # the request id (X-Request-ID in and out) and the log context of everything below
    "powernode.logs.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # static files (admin, Swagger UI from the sidecar, our CSS/JS) under uvicorn/gunicorn too
    "powernode.middleware.StaticFilesMiddleware",  # WhiteNoise, async-capable (held watch requests)
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # innermost of ours, so it sees the views' exceptions: JSON 500s under /api/ even with DEBUG on
    "apps.system.errors.ApiErrorsMiddleware",
    # last, as django-axes asks: turns a locked-out login into its lockout answer (it handles no exceptions)
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out login before the password is even checked
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "powernode.auth_backends.ModelPermissionsBackend",  # Django's ModelBackend, permissions in one query
]

ROOT_URLCONF = "powernode.urls"
WSGI_APPLICATION = "powernode.wsgi.application"
ASGI_APPLICATION = "powernode.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [RESOURCES_DIR / "templates"],
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
    _sqlite_name = str(DATABASES["default"]["NAME"])
    _on_disk = _sqlite_name not in ("", ":memory:") and not _sqlite_name.startswith("file:")
    if _on_disk and Path(_sqlite_name).parent.is_dir():
        # An empty file is an empty SQLite database: making it ourselves makes it 0600 (SQLite gives its
        # journal and WAL files the database file's mode).
        create_private_file(Path(_sqlite_name), str)
    # Concurrent writers (agents, operators) wait for the lock instead of failing at once.
    # IMMEDIATE: a writing transaction takes the lock up front, so two writers queue instead of
    # deadlocking on the read-to-write upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    # A thread keeps its connection between requests (the server reuses its threads): a new SQLite
    # connection reads and parses the whole schema at its first statement, which cost about as much as the
    # rest of an API call (system_list_modules 2.4 ms a new connection per request, 1.2-1.4 ms kept).
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
elif env.bool("DATABASE_POOL", default=True):
    # PostgreSQL: a pool of connections per server process (psycopg_pool, Django's OPTIONS["pool"]). Under the
    # ASGI server every request runs in a thread of its own, so a per-thread persistent connection
    # (CONN_MAX_AGE) would be a new connection per request; a request takes one from the pool at its first
    # query and gives it back when it ends (a held heartbeat holds none while it waits).
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them (Django refuses a pool with CONN_MAX_AGE)
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "pool",
        {
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=16),
            "timeout": env.float("DATABASE_POOL_TIMEOUT_S", default=10),  # waiting for a free one, then an error
        },
    )
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        # The pool keeps its connections, so a statement they have run a few times is kept prepared on
        # them: PostgreSQL plans it once per connection instead of at every call (the operator token's
        # query, a join over six tables, spent three quarters of its time planning). Needs server-side
        # parameter binding; psycopg prepares a statement on its 5th run and keeps the newest 100.
        DATABASES["default"]["OPTIONS"].setdefault("server_side_binding", True)
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 5)
else:  # DATABASE_POOL=false: an external pooler (pgbouncer) in front, or a sync (WSGI) server
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Admin login lockout (django-axes): after AXES_FAILURE_LIMIT failed logins for one username from one
# address, that pair is locked out for AXES_COOLOFF_TIME; a successful login resets the count.
AXES_FAILURE_LIMIT = env.int("POWERNODE_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env.int("POWERNODE_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

# Failed operator Bearer authentications allowed per client address (DRF rate syntax; powernode.throttling)
POWERNODE_AUTH_FAILURE_RATE = env.str("POWERNODE_AUTH_FAILURE_RATE", default="20/min") or None

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
STATICFILES_DIRS = [RESOURCES_DIR / "static"]
# serve straight from the apps' static dirs too, so a fresh checkout works before collectstatic
WHITENOISE_USE_FINDERS = True

DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("POWERNODE_MAX_BODY_BYTES", default=256 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.system.authentication.OperatorTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "powernode.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "powernode.pagination.CappedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.system.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "powernode API",
    "DESCRIPTION": "Operator actions, agent protocol and read-only resources of powernode.",
    "VERSION": "1",  # the API's; the platform's is x-powernode-version
    "EXTENSIONS_INFO": {"x-powernode-version": POWERNODE_VERSION},
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
# How long a hub (powernode-agent hub) sleeps between syncs; told in every POST /api/v1/hub/sync answer.
POWERNODE_HUB_POLL_INTERVAL_S = env.int("POWERNODE_HUB_POLL_INTERVAL_S", default=2)

# wants_cert per instance: at most this many server certificates in the window (a stolen agent token
# must not mint certificates in bulk); counted from IssuedCertificate rows, so it holds across processes.
POWERNODE_WANTS_CERT_LIMIT = env.int("POWERNODE_WANTS_CERT_LIMIT", default=10)
POWERNODE_WANTS_CERT_WINDOW_S = env.int("POWERNODE_WANTS_CERT_WINDOW_S", default=600)

# Docker hosts: the platform's probe of each daemon (docs/CONTAINER_RUNTIMES.md "Probe"). ``ready`` promotes only
# after the platform read the daemon's version over mTLS (POWERNODE_DOCKER_READY_PROBE, on unless a test suite
# without daemons turns it off); every platform process started by uvicorn, and ``manage.py powernode_worker``,
# runs the periodic probe every POWERNODE_DOCKER_PROBE_INTERVAL_S (0: not in this process). On PostgreSQL an
# advisory lock lets one process probe at a time.
POWERNODE_DOCKER_READY_PROBE = env.bool("POWERNODE_DOCKER_READY_PROBE", default=True)
POWERNODE_DOCKER_PROBE_INTERVAL_S = env.float("POWERNODE_DOCKER_PROBE_INTERVAL_S", default=30)
POWERNODE_DOCKER_PROBE_TIMEOUT_S = env.float("POWERNODE_DOCKER_PROBE_TIMEOUT_S", default=5)
POWERNODE_DOCKER_PROBE_CONCURRENCY = env.int("POWERNODE_DOCKER_PROBE_CONCURRENCY", default=8)
# A docker_* call whose connection is refused (dockerd restarting: a renewal, an agent restart) is tried again
# for up to this many seconds before it fails; the request never reached the daemon, so that is always safe.
POWERNODE_DOCKER_REFUSED_RETRY_S = env.float("POWERNODE_DOCKER_REFUSED_RETRY_S", default=3)
# A connected host whose agent is restarting dockerd with a renewed certificate (signed, no ready yet) stays
# connected for this many seconds when the probe gets no answer; after that it is unreachable as usual.
POWERNODE_DOCKER_RENEWAL_GRACE_S = env.float("POWERNODE_DOCKER_RENEWAL_GRACE_S", default=60)

# Lifetime of a host's server certificate and of the platform's client keypair for it; both are renewed at two
# thirds of their life (DESIGN §4 "Renewal"). POWERNODE_HOST_CERT_MINUTES, when set (> 0), overrides the days
# (short lifetimes for tests and the lab).
POWERNODE_HOST_CERT_DAYS = env.int("POWERNODE_HOST_CERT_DAYS", default=30)
POWERNODE_HOST_CERT_MINUTES = env.int("POWERNODE_HOST_CERT_MINUTES", default=0)

# GET /metrics (Prometheus text): open unless set; then scrapers send "Authorization: Bearer <token>".
POWERNODE_METRICS_TOKEN = env.str("POWERNODE_METRICS_TOKEN", default="")
# Several worker processes: counters kept in files there, summed by every /metrics (powernode.metrics).
# prometheus-client reads the process environment when the first metric is made, after these settings.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
else:
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # set but empty would put its files in the working directory

# Log lines on stderr: json (one object per line: time, level, logger, message, request_id, actor,
# instance_id, host_id; the production default) or text (the development default). powernode.logs.
POWERNODE_LOG_FORMAT = env.str("POWERNODE_LOG_FORMAT", default="text" if DEBUG else "json")
if POWERNODE_LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"POWERNODE_LOG_FORMAT must be json or text, not {POWERNODE_LOG_FORMAT!r}.")
POWERNODE_LOG_LEVEL = env.str("POWERNODE_LOG_LEVEL", default="WARNING")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "powernode.logs.JsonFormatter"},
        "text": {"()": "powernode.logs.TextFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": POWERNODE_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": POWERNODE_LOG_LEVEL},
    # uvicorn's own lines (startup, errors) in the same format, at the level its --log-level set. Not the
    # "uvicorn" parent: dictConfig strips the handlers of an existing child of a configured logger, and
    # "uvicorn.access" carries the server's access log (gunicorn's --access-logfile; off by default):
    # powernode.request logs each request at INFO.
    "loggers": {"uvicorn.error": {"handlers": ["console"], "propagate": False}},
}

# Key for secrets encrypted at rest (Fernet). In development one is made under VAR_DIR (powernode.secretbox).
_FERNET_HINT = (
    "Generate one: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'."
)
POWERNODE_ENCRYPTION_KEY = _required_in_production(
    "POWERNODE_ENCRYPTION_KEY", f"Private keys are not stored with a development key. {_FERNET_HINT}"
)
if POWERNODE_ENCRYPTION_KEY:
    try:  # refuse now, not at the first secret written
        Fernet(POWERNODE_ENCRYPTION_KEY)
    except ValueError:
        raise ImproperlyConfigured(
            f"POWERNODE_ENCRYPTION_KEY is not a Fernet key (32 url-safe base64-encoded bytes). {_FERNET_HINT}"
        ) from None

FIXTURE_DIRS = [RESOURCES_DIR / "fixtures"]

# Internal CA (apps.pki): Vault/OpenBao when VAULT_ADDR and a credential are set, else the local CA files.
# The credential: a static VAULT_TOKEN, or an AppRole (VAULT_ROLE_ID with VAULT_SECRET_ID, or VAULT_SECRET_ID_FILE
# read at each login) whose token the platform renews before it expires and replaces by a new login when
# renewal is refused (apps/pki/adapters/vault.py VaultAuth). VAULT_TOKEN wins when both are set.
VAULT_ADDR = env.str("VAULT_ADDR", default="")
VAULT_TOKEN = env.str("VAULT_TOKEN", default="")
VAULT_ROLE_ID = env.str("VAULT_ROLE_ID", default="")
VAULT_SECRET_ID = env.str("VAULT_SECRET_ID", default="")
VAULT_SECRET_ID_FILE = env.str("VAULT_SECRET_ID_FILE", default="")
VAULT_APPROLE_MOUNT = env.str("VAULT_APPROLE_MOUNT", default="approle")
VAULT_PKI_MOUNT = env.str("VAULT_PKI_MOUNT", default="pki_int")
VAULT_PKI_ROLE = env.str("VAULT_PKI_ROLE", default="node")
VAULT_PKI_ROOT_MOUNT = env.str("VAULT_PKI_ROOT_MOUNT", default="pki")
VAULT_KV_MOUNT = env.str("VAULT_KV_MOUNT", default="secret")
VAULT_TIMEOUT = env.float("VAULT_TIMEOUT", default=10.0)
# The Vault KV outbox (apps/pki/kv.py): each write is sent after its commit; what is left (Vault was down) is
# drained by ``manage.py powernode_worker`` every VAULT_OUTBOX_INTERVAL_S, VAULT_OUTBOX_BATCH rows per query,
# backing off up to POWERNODE_WORKER_MAX_BACKOFF_S while Vault fails.
VAULT_OUTBOX_INTERVAL_S = env.float("VAULT_OUTBOX_INTERVAL_S", default=5.0)
VAULT_OUTBOX_BATCH = env.int("VAULT_OUTBOX_BATCH", default=100)
POWERNODE_WORKER_MAX_BACKOFF_S = env.float("POWERNODE_WORKER_MAX_BACKOFF_S", default=60.0)
# How many machines run platform processes (servers, workers) on this database. Above 1 the local CA refuses
# to run (system check pki.E001 and a 502 at first use): its key files live on one machine; use Vault.
POWERNODE_PLATFORM_HOSTS = env.int("POWERNODE_PLATFORM_HOSTS", default=1)
PKI_LOCAL_CA_DIR = Path(env.str("PKI_LOCAL_CA_DIR", default=str(VAR_DIR / "pki")))

# Agent install from the platform (apps.nodes.agent_dist): the wheel is built from this source tree, and the
# enrollment command shown to operators names POWERNODE_PUBLIC_URL (the URL nodes reach the platform at; the
# admin falls back to the address the operator's browser used). POWERNODE_AGENT_PLATFORM_CA_FILE: a PEM
# bundle that verifies the platform's https certificate (a private CA), served at /agent/platform-ca.pem and
# pinned by its sha256 in the command; empty when the platform's certificate chains to a public CA.
POWERNODE_PUBLIC_URL = env.str("POWERNODE_PUBLIC_URL", default="").rstrip("/")
POWERNODE_AGENT_SOURCE_DIR = Path(env.str("POWERNODE_AGENT_SOURCE_DIR", default=str(BASE_DIR / "agent")))
POWERNODE_AGENT_PLATFORM_CA_FILE = env.str("POWERNODE_AGENT_PLATFORM_CA_FILE", default="")
# The systemd unit /agent/powernode-agent.service serves: this file when it exists, else a built-in copy.
POWERNODE_AGENT_UNIT_FILE = Path(
    env.str("POWERNODE_AGENT_UNIT_FILE", default=str(BASE_DIR / "deploy" / "systemd" / "powernode-agent.service"))
)
