"""The test run's settings: the platform's own, in development mode (as ``make run``), unless the run says otherwise.

Production refuses to start without its keys; the tests opt into development (keys made under the var
dir) the way an operator would, through DJANGO_DEBUG. pytest-django still runs each test with DEBUG off.
Servers the tests start in subprocesses (tests/mcp, the lab) build their own environment.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")

from powernode.settings import *  # noqa: E402,F403

# SQLite: a test database in a file (in memory when /dev/shm is there), not Django's shared-cache in-memory
# one. Shared cache locks whole tables and answers "database table is locked" at once to a second thread,
# where a file database waits (timeout): the watch tests hold requests in async views while other threads
# commit, as a server does.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    _shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    import tempfile as _tempfile

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(_shm or _tempfile.gettempdir(), f"powernode-test-{os.getpid()}.sqlite3")
    }

# The fast suite has no Docker daemons behind its hosts: ready promotes without the platform's probe here,
# and no background prober runs. The probe's own tests (tests/docker_ops/test_probe.py) turn it on and point
# the host at a closed port; the lab runs the shipped settings (probe on).
POWERNODE_DOCKER_READY_PROBE = False
POWERNODE_DOCKER_PROBE_INTERVAL_S = 0
