"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved_medians_ms(calls: dict[str, Callable[[], object]], runs: int, warmup: int = 5) -> dict[str, float]:
    """Median per call in ms, the calls taking turns so background load on the machine hits each alike."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def sdk_api_client(*, base_url: str, tls: object, timeout: int = 60) -> object:
    """A docker-py APIClient speaking the daemon's API version, as the engine adapter negotiates it.

    Not ``version="auto"``: that probes inside the constructor, before ``trust_env = False`` can stop
    REQUESTS_CA_BUNDLE from replacing the host's CA (docker/docker-py#2433). Call it where the daemon is
    reachable (inside the platform's namespace).
    """
    import docker
    from docker.utils import version_lt

    client = docker.APIClient(base_url=base_url, tls=tls, version=docker.constants.DEFAULT_DOCKER_API_VERSION,
                              timeout=timeout)
    client.trust_env = False
    server = client.version(api_version=False)["ApiVersion"]
    if version_lt(server, client._version):
        client._version = server
    return client
