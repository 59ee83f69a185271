"""DESIGN §7: production by default. DEBUG is off unless asked for, and production refuses to start without its keys."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.deploy.helpers import BASE_DIR, clean_env, manage, production_env, python

SHOW = (
    "import json; from django.conf import settings as s; print(json.dumps({k: getattr(s, k) for k in "
    "['DEBUG', 'ALLOWED_HOSTS', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', "
    "'SECURE_PROXY_SSL_HEADER', 'SECURE_SSL_REDIRECT']}))"
)


def test_nothing_set_is_production_and_refuses_to_start_without_a_secret_key(tmp_path: Path):
    done = python(SHOW, clean_env(tmp_path))
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and "DJANGO_SECRET_KEY is not set" in done.stderr
    assert not (tmp_path / "secret_key").exists()  # no development key made behind production's back


def test_production_refuses_to_start_without_an_encryption_key(tmp_path: Path):
    env = production_env(tmp_path)
    del env["POWERNODE_ENCRYPTION_KEY"]
    done = python(SHOW, env)
    assert done.returncode != 0
    assert "POWERNODE_ENCRYPTION_KEY is not set" in done.stderr


def test_with_its_keys_production_starts_with_debug_off_listed_hosts_and_secure_cookies(tmp_path: Path):
    env = production_env(tmp_path)
    for name in ("DJANGO_ALLOWED_HOSTS", "DJANGO_SECURE_HSTS_SECONDS", "DJANGO_SECURE_SSL_REDIRECT"):
        del env[name]  # the defaults, not the test's choices
    done = python(SHOW, env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["DEBUG"] is False
    assert "*" not in seen["ALLOWED_HOSTS"]  # so Django's and MCP's Host checks are on
    assert seen["SESSION_COOKIE_SECURE"] is True and seen["CSRF_COOKIE_SECURE"] is True
    assert seen["SECURE_HSTS_SECONDS"] == 0 and seen["SECURE_PROXY_SSL_HEADER"] is None
    assert not (tmp_path / "secret_key").exists() and not (tmp_path / "encryption_key").exists()


def test_https_settings_come_from_the_environment(tmp_path: Path):
    env = production_env(tmp_path, DJANGO_SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO")
    done = python(SHOW, env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["ALLOWED_HOSTS"] == ["powernode.example.net"]
    assert seen["SECURE_HSTS_SECONDS"] == 31536000 and seen["SECURE_SSL_REDIRECT"] is True
    assert seen["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_development_is_an_opt_in_that_makes_its_own_key(tmp_path: Path):
    done = python(SHOW, clean_env(tmp_path, DJANGO_DEBUG="true"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["DEBUG"] is True
    assert (tmp_path / "secret_key").read_text().strip()


def test_check_deploy_is_clean_in_a_production_environment(tmp_path: Path):
    done = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


# env.str("X"...), _required_in_production("X"...), os.environ.get("X"), os.environ["X"], os.getenv("X")
READS = re.compile(
    r'(?:\benv\.\w+\(|_required_in_production\(|os\.environ\.get\(|os\.environ\[|os\.getenv\()\s*"([A-Z][A-Z0-9_]+)"'
)


def variables_read() -> dict[str, str]:
    """Every environment variable the platform's code reads (settings, kernel, apps, manage.py) → a file reading it."""
    files = [BASE_DIR / "manage.py", *(BASE_DIR / "powernode").rglob("*.py"), *(BASE_DIR / "apps").rglob("*.py")]
    return {name: str(path.relative_to(BASE_DIR)) for path in files for name in READS.findall(path.read_text())}


def test_env_example_lists_every_variable_the_platform_reads():
    read = variables_read()
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (BASE_DIR / ".env.example").read_text(), re.MULTILINE))
    assert {"DJANGO_DEBUG", "DJANGO_SECRET_KEY", "POWERNODE_ENCRYPTION_KEY", "POWERNODE_TOKEN"} <= set(read)
    assert {name: where for name, where in read.items() if name not in listed} == {}


def test_the_reads_pattern_sees_each_way_of_reading_a_variable():
    sample = 'env.int("A_1") os.environ.get("B_2") os.environ["C_3"] os.getenv("D_4") os.environ.setdefault("E")'
    assert READS.findall(sample) == ["A_1", "B_2", "C_3", "D_4"]


def test_sqlite_keeps_a_threads_connection_between_requests_unless_told_otherwise(tmp_path: Path):
    """make run's database: a new SQLite connection parses the whole schema at its first statement, so the
    served threads keep theirs (60 s, docs/PERFORMANCE.md item 12); DATABASE_CONN_MAX_AGE changes it."""
    show = (
        "import json; from django.conf import settings as s; d = s.DATABASES['default']; "
        "print(json.dumps([d['ENGINE'], d['CONN_MAX_AGE'], 'pool' in d.get('OPTIONS', {})]))"
    )
    for extra, kept in (({}, 60), ({"DATABASE_CONN_MAX_AGE": "0"}, 0)):
        done = python(show, production_env(tmp_path, **extra))
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == ["django.db.backends.sqlite3", kept, False]
