"""Secret files under the var dir: private from birth (0600 in a 0700 dir, SQLite included), one key however
many processes start together."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.management import call_command

from tests.deploy.helpers import BASE_DIR, clean_env, python


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_fresh_var_dir_is_private_and_so_is_everything_secret_in_it(tmp_path: Path):
    var = tmp_path / "var"
    code = (
        "import os; os.umask(0o022); import django; django.setup(); "
        "from powernode import secretbox; secretbox.encrypt('x'); "
        "from django.db import connection; connection.ensure_connection()"
    )
    done = python(code, clean_env(var, DJANGO_DEBUG="true"))
    assert done.returncode == 0, done.stderr
    assert mode(var) == 0o700
    assert {p.name: mode(p) for p in var.iterdir() if p.is_file()} == {
        "secret_key": 0o600,
        "encryption_key": 0o600,
        "powernode.sqlite3": 0o600,
    }


def test_a_var_dir_made_before_is_closed_to_group_and_others(tmp_path: Path):
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    var.chmod(0o755)
    done = python("import django; django.setup()", clean_env(var, DJANGO_DEBUG="true"))
    assert done.returncode == 0, done.stderr
    assert mode(var) == 0o700


# Each racer waits for the starting gun, then imports the settings; making a key takes 0.3 s, so every
# racer has looked for the file before the first one writes it.
RACER = """
import os, secrets, sys, time
from pathlib import Path
import environ, django.core.exceptions  # imported before the gun: the race is the settings' own code
_make = secrets.token_urlsafe
def slow_token(n=None):
    time.sleep(0.3)
    return _make(n)
secrets.token_urlsafe = slow_token
gun = Path(sys.argv[1])
while not gun.exists():
    time.sleep(0.005)
from django.conf import settings
print(settings.SECRET_KEY)
"""


def test_processes_racing_to_make_the_dev_key_end_with_one_key_all_read(tmp_path: Path):
    var, gun = tmp_path / "var", tmp_path / "go"
    env = clean_env(var, DJANGO_DEBUG="true")
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(gun)], cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    time.sleep(1.5)  # every racer is waiting at the line
    gun.touch()
    keys = [r.communicate(timeout=60)[0].strip() for r in racers]
    assert all(r.returncode == 0 for r in racers)
    assert len(set(keys)) == 1 and keys[0]
    assert (var / "secret_key").read_text().strip() == keys[0]
    assert [p.name for p in var.iterdir() if p.name.startswith(".secret_key")] == []  # no temp files left


def test_a_key_written_by_another_worker_meanwhile_is_the_one_used(settings, tmp_path: Path, monkeypatch):
    """The encryption key: if the file appears between our check and our write, the winner's key is read."""
    from powernode import secretbox

    settings.POWERNODE_ENCRYPTION_KEY = ""
    settings.VAR_DIR = tmp_path
    winner = Fernet.generate_key().decode()
    generate = Fernet.generate_key

    def another_worker_wins_meanwhile() -> bytes:
        (tmp_path / "encryption_key").write_text(winner)
        return generate()

    monkeypatch.setattr(Fernet, "generate_key", staticmethod(another_worker_wins_meanwhile))
    assert secretbox._key() == winner
    assert (tmp_path / "encryption_key").read_text() == winner


def test_setup_writes_the_admin_password_and_operator_token_at_0600(db, settings, tmp_path: Path):
    settings.VAR_DIR = tmp_path
    settings.PKI_LOCAL_CA_DIR = tmp_path / "pki"
    call_command("powernode_setup", stdout=io.StringIO())
    assert mode(tmp_path / "admin_password") == 0o600
    assert mode(tmp_path / "operator_token") == 0o600
    token = (tmp_path / "operator_token").read_text()
    call_command("powernode_setup", stdout=io.StringIO())
    assert (tmp_path / "operator_token").read_text() == token  # kept, not made again


def test_dot_env_is_not_committed():
    done = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=BASE_DIR)
    assert done.returncode == 0, ".env must be git-ignored: it holds the deployment's keys"
