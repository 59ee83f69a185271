"""The test run's settings: the platform's own, in development mode (as ``make run``), unless the run says otherwise.

Production refuses to start without its keys; the tests opt into development (keys made under the var
dir) the way an operator would, through DJANGO_DEBUG. pytest-django still runs each test with DEBUG off.
Servers the tests start in subprocesses (tests/mcp, the lab) build their own environment.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")

from powernode.settings import *  # noqa: E402,F403

# The fast suite has no Docker daemons behind its hosts: ready promotes without the platform's probe here,
# and no background prober runs. The probe's own tests (tests/docker_ops/test_probe.py) turn it on and point
# the host at a closed port; the lab runs the shipped settings (probe on).
POWERNODE_DOCKER_READY_PROBE = False
POWERNODE_DOCKER_PROBE_INTERVAL_S = 0
