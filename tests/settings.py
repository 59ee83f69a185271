"""The test run's settings: the platform's own, in development mode (as ``make run``), unless the run says otherwise.

Production refuses to start without its keys; the tests opt into development (keys made under the var
dir) the way an operator would, through DJANGO_DEBUG. pytest-django still runs each test with DEBUG off.
Servers the tests start in subprocesses (tests/mcp, the lab) build their own environment.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")

from powernode.settings import *  # noqa: E402,F403
