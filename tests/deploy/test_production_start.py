"""DESIGN §7, production start: a server process without its production variables refuses to start and
names the variable; ``check --deploy`` names what a deployment left at a loopback default."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.helpers import manage, production_env
from tests.servers import production_env as server_env
from tests.servers import refused_start


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY is not set"),
        ({"POWERNODE_ENCRYPTION_KEY": None}, "POWERNODE_ENCRYPTION_KEY is not set"),
        ({"POWERNODE_ENCRYPTION_KEY": "not-a-fernet-key"}, "POWERNODE_ENCRYPTION_KEY is not a Fernet key"),
        ({"POWERNODE_LOG_FORMAT": "xml"}, "POWERNODE_LOG_FORMAT must be json or text"),
    ],
)
def test_a_server_without_its_production_variables_refuses_to_start_and_names_them(
    tmp_path: Path, change: dict[str, str | None], says: str
):
    env = server_env(tmp_path)
    for name, value in change.items():
        if value is None:
            del env[name]
        else:
            env[name] = value
    returncode, output = refused_start(env, tmp_path)
    assert returncode != 0
    assert says in output
    assert not (tmp_path / "secret_key").exists() and not (tmp_path / "encryption_key").exists()


def test_check_deploy_names_allowed_hosts_left_unset(tmp_path: Path):
    env = production_env(tmp_path)
    del env["DJANGO_ALLOWED_HOSTS"]
    done = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert done.returncode != 0
    assert "powernode.W001" in done.stderr + done.stdout and "DJANGO_ALLOWED_HOSTS is not set" in done.stderr
    plain = manage("check", env=env)  # a warning of the deployment checklist, not a refusal to run
    assert plain.returncode == 0, plain.stderr
