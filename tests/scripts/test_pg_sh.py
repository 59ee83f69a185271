"""scripts/pg.sh: a throwaway cluster that answers only with its generated password, in private files.

Starts its own cluster on a free port with its own POWERNODE_VAR_DIR (never the shared one on 54329),
and stops and removes it at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.needs import need

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
PG_SH = ROOT / "scripts" / "pg.sh"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_sh(command: str, env: dict[str, str]) -> str:
    done = subprocess.run([str(PG_SH), command], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout.strip()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict]:
    need(bool(glob.glob("/usr/lib/postgresql/*/bin/initdb")), "needs Debian's postgresql (scripts/pg.sh installs it)")
    var = tmp_path / "var"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(POWERNODE_VAR_DIR=str(var), PG_PORT=str(port))
    try:
        url = pg_sh("start", env)
        cluster_dir = Path((var / "pg" / "cluster").read_text().strip())
        yield {"url": url, "var": var, "port": port, "env": env, "dir": cluster_dir}
    finally:
        subprocess.run([str(PG_SH), "stop"], env=env, capture_output=True, timeout=120)
        remembered = var / "pg" / "cluster"
        if remembered.exists():
            shutil.rmtree(remembered.read_text().strip(), ignore_errors=True)


def connect(port: int, *, user: str = "powernode", password: str | None = None, host: str = "127.0.0.1"):
    params = {"host": host, "port": port, "user": user, "dbname": "postgres", "connect_timeout": 10}
    params["passfile"] = os.devnull  # no ~/.pgpass either
    if password is not None:
        params["password"] = password
    return psycopg.connect(**params)


def test_cluster_wants_its_password_and_keeps_it_private(cluster: dict) -> None:
    password = (cluster["var"] / "pg" / "password").read_text().strip()
    assert len(password) >= 32
    assert cluster["url"] == f"postgres://powernode:{password}@127.0.0.1:{cluster['port']}/powernode"

    with psycopg.connect(cluster["url"], connect_timeout=10) as conn:
        assert conn.execute("show listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("show password_encryption").fetchone() == ("scram-sha-256",)
        data_dir = Path(conn.execute("show data_directory").fetchone()[0])
        socket_dir = conn.execute("show unix_socket_directories").fetchone()[0]
        hba = [r[0] for r in conn.execute("select distinct auth_method from pg_hba_file_rules").fetchall()]
    assert hba == ["scram-sha-256"]
    for user in ("powernode", "postgres"):
        for password_sent in (None, "wrong", ""):
            with pytest.raises(psycopg.OperationalError):
                connect(cluster["port"], user=user, password=password_sent).close()
        with pytest.raises(psycopg.OperationalError):  # the socket asks for the password too
            connect(cluster["port"], user=user, host=socket_dir).close()
    connect(cluster["port"], user="postgres", password=password).close()

    assert data_dir.parent == cluster["dir"]
    assert cluster["dir"].name.startswith("powernode-pg.") and cluster["dir"] != Path("/tmp/powernode-pg")
    for private_dir in (cluster["dir"], data_dir):
        assert stat.S_IMODE(private_dir.stat().st_mode) == 0o700, private_dir
    assert stat.S_IMODE((cluster["var"] / "pg" / "password").stat().st_mode) == 0o600
    assert stat.S_IMODE((cluster["var"] / "pg").stat().st_mode) == 0o700
    assert not (cluster["dir"] / "pwfile").exists()  # initdb's copy of the password is gone


def test_restart_finds_the_same_cluster_and_password(cluster: dict) -> None:
    with psycopg.connect(cluster["url"], autocommit=True, connect_timeout=10) as conn:
        conn.execute("create table kept (x int)")
    pg_sh("stop", cluster["env"])
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster["url"], connect_timeout=3).close()
    assert pg_sh("start", cluster["env"]) == cluster["url"]
    assert (cluster["var"] / "pg" / "cluster").read_text().strip() == str(cluster["dir"])
    with psycopg.connect(cluster["url"], connect_timeout=10) as conn:
        assert conn.execute("select count(*) from kept").fetchone() == (0,)
