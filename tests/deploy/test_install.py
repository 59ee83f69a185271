"""``pip install`` gives a working platform: the wheel holds the packages, migrations, templates, static files
and the catalog fixture, and ``powernode-admin`` runs it from outside any checkout.

The wheel is built from this checkout's files (tracked and new, not ignored) copied to a temp dir, then
installed with ``--no-deps --no-index`` into a throwaway venv that finds its dependencies in this project's
venv (a plain path line in a .pth file: the project venv's own .pth hooks, e.g. its editable install of
this checkout, are not run, so ``powernode`` can only come from the wheel).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import powernode
from tests.deploy.helpers import BASE_DIR, production_env

pytestmark = pytest.mark.deploy


def run(argv: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):  # noqa: ANN201
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway venv with the platform's wheel installed; its bin directory."""
    root = tmp_path_factory.mktemp("install")
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=BASE_DIR).stdout.split("\0")
    src = root / "src"
    for name in filter(None, files):
        if (BASE_DIR / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(BASE_DIR / name, src / name)
    built = run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", root / "dist", src], cwd=root)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (root / "dist").glob("powernode-*.whl")
    assert wheel.name.startswith(f"powernode-{powernode.__version__}-")  # the one version source
    venv = root / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)
    assert made.returncode == 0, made.stderr
    purelib = Path(run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       cwd=root).stdout.strip())  # fmt: skip
    (purelib / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", "--no-deps",
                "--no-index", wheel], cwd=root)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return venv / "bin"


# what an installed copy can show without a checkout: where it runs from, its templates, static, fixtures
SHOW = """
import json, powernode
from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import get_template
from django.test import Client
page = Client().get("/admin/login/", HTTP_HOST="powernode.example.net", secure=True)
print(json.dumps({
    "file": powernode.__file__,
    "checkout": settings.CHECKOUT,
    "css": bool(finders.find("powernode/admin.css")),
    "template": get_template("admin/nodes/nodeinstance/change_form.html").origin.name,
    "login": [page.status_code, "pn-version" in page.content.decode()],
    "healthz": Client().get("/healthz").json(),
}))
"""


def test_powernode_admin_runs_an_installed_platform_outside_the_checkout(installed: Path, tmp_path: Path):
    var = tmp_path / "var"
    env = production_env(var)
    cwd = tmp_path  # not the checkout: nothing found there by accident
    admin = installed / "powernode-admin"

    check = run([admin, "check", "--deploy", "--fail-level", "WARNING"], cwd=cwd, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no issues" in check.stdout

    setup = run([admin, "powernode_setup"], cwd=cwd, env=env)  # migrations, the catalog fixture, the CA
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "default catalog loaded" in setup.stdout and (var / "pki").is_dir()
    assert run([admin, "migrate", "--check"], cwd=cwd, env=env).returncode == 0  # nothing left unapplied

    shown = run([admin, "shell", "--no-imports", "-c", SHOW], cwd=cwd, env=env)
    assert shown.returncode == 0, shown.stderr
    seen = json.loads(shown.stdout.strip().splitlines()[-1])
    site_packages = str(installed.parent / "lib")
    assert seen["file"].startswith(site_packages) and seen["checkout"] is False
    assert seen["css"] and seen["template"].startswith(site_packages)
    assert seen["login"] == [200, True]  # our base_site.html, with the version
    assert seen["healthz"] == {"status": "ok", "version": powernode.__version__}


def test_an_installed_copy_refuses_to_start_without_a_var_dir(installed: Path, tmp_path: Path):
    env = production_env(tmp_path / "var")
    del env["POWERNODE_VAR_DIR"]
    done = run([installed / "powernode-admin", "check"], cwd=tmp_path, env=env)
    assert done.returncode != 0
    assert "POWERNODE_VAR_DIR is not set" in done.stderr
