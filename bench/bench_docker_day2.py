"""Day-2 docker actions through the platform vs the Docker SDK on the same daemon (issue 14; goal <= 1.2x):

``docker_list_containers``, ``docker_container_logs`` (200 lines) and ``docker_restart_container``, each as an
in-process ``run_action`` call (permission, schema, host lookup, engine) and as the same call made directly
with docker-py's APIClient and the platform's own client certificate for that host, in one run (the calls
take turns after warm-up rounds, so load on the machine hits each alike).

Needs root (it stands up the tutorial lab):
    sudo .venv/bin/python bench/bench_docker_day2.py [--runs 30] [--restart-runs 5] [--profile N]

``--profile N`` also runs N ``docker_list_containers`` actions under cProfile and prints where the time
goes (what the platform adds over the SDK's own call).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import interleaved_medians_ms, sdk_api_client  # noqa: E402

from lab.netns import in_netns  # noqa: E402
from lab.platform import platform_env  # noqa: E402
from lab.proc import why_lab_cannot_run  # noqa: E402
from lab.tutorial import Tutorial  # noqa: E402

TALKER = "bench-talker"
# 300 lines, then sleep: the logs call asks for the last 200 (about 9 KiB)
SCRIPT = "i=0; while [ $i -lt 300 ]; do echo \"bench line $i of the day-2 benchmark\"; i=$((i+1)); done; sleep 3600"
GOAL = 1.2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="calls per variant for list and logs (default 30)")
    parser.add_argument("--restart-runs", type=int, default=5, help="restarts per variant (default 5)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile N docker_list_containers actions with cProfile and print the top functions")
    args = parser.parse_args()
    reason = why_lab_cannot_run()
    if reason:
        print(f"bench_docker_day2: cannot run: {reason}", file=sys.stderr)
        return 2
    tutorial = Tutorial(f"pnb{secrets.token_hex(2)[:3]}-", out=lambda line: None)
    try:
        started = time.monotonic()
        tutorial.build()
        tutorial.assign()
        tutorial.watch_events()
        tutorial.connected()
        tutorial.pull()
        tutorial.create_container()
        tutorial.platform.action("docker_create_container", {
            "host_id": tutorial.host_id, "image": tutorial.image_ref, "name": TALKER,
            "command": ["/bin/sh", "-c", SCRIPT],
        })
        print(f"lab built, host connected, 2 containers running in {time.monotonic() - started:.1f} s")
        ratios = measure(tutorial, args.runs, args.restart_runs, args.profile)
        return 0 if max(ratios.values()) <= GOAL else 1
    finally:
        left = tutorial.close()
        if left:
            print(f"bench_docker_day2: lab left {left}", file=sys.stderr)


def measure(tutorial: Tutorial, runs: int, restart_runs: int, profile_runs: int = 0) -> dict[str, float]:
    import docker

    # This process becomes a platform process too (same database and CA as the lab's server).
    os.environ.update(platform_env(tutorial.platform.var_dir))
    import django

    django.setup()
    from django.conf import settings

    # The lab's platform runs with DJANGO_DEBUG=true (development keys under its var dir); production does
    # not, and DEBUG makes every SQL statement go through Django's recording cursor: measure without it.
    settings.DEBUG = False
    from django.contrib.auth import get_user_model

    from powernode.actors import Actor
    from powernode.registry import get_action, run_action, validate_input

    actor = Actor.for_user(get_user_model().objects.get(username=tutorial.platform.operator))
    host = {"host_id": tutorial.host_id}
    material = tutorial.platform.side("platform-client", "--host-id", tutorial.host_id)
    platform_ns = tutorial.lab.platform.name
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name in ("chain_pem", "cert_pem", "key_pem"):
            paths[name] = Path(tmp) / name
            paths[name].write_text(material[name])
        os.chmod(paths["key_pem"], 0o600)
        tls = docker.tls.TLSConfig(
            client_cert=(str(paths["cert_pem"]), str(paths["key_pem"])), ca_cert=str(paths["chain_pem"]), verify=True
        )
        with in_netns(platform_ns):
            sdk = sdk_api_client(base_url=material["api_endpoint"], tls=tls)

        def action(name: str, payload: dict) -> object:
            with in_netns(platform_ns):
                return run_action(name=name, actor=actor, payload={**host, **payload})

        def direct(call):  # noqa: ANN001, ANN202
            def run() -> object:
                with in_netns(platform_ns):
                    return call()

            return run

        for _ in range(100):  # the talker has printed its 300 lines
            if "of the day-2" in action("docker_container_logs", {"container_id": TALKER, "tail": 1})["logs"]:
                break
            time.sleep(0.1)
        logs = action("docker_container_logs", {"container_id": TALKER})["logs"]
        direct_logs = sdk.logs(TALKER, tail=200).decode()
        assert logs == direct_logs and len(logs.splitlines()) == 200, (len(logs), len(direct_logs))

        from apps.docker_hosts.services import operations

        with in_netns(platform_ns):  # the engine the action uses (cached per host), called without the layers
            engine = operations._engine(operations._host(tutorial.host_id))
        list_action = get_action("docker_list_containers")
        medians = interleaved_medians_ms(
            {
                "list/action": lambda: action("docker_list_containers", {}),
                "list/service": direct(lambda: operations.docker_container_list(host_id=tutorial.host_id)),
                "list/engine": direct(lambda: engine.list_containers()),
                # the two layers run_action adds before the engine: input checks, then the host's row
                "list/checks": lambda: validate_input(action_=list_action, payload=host),
                "list/lookup": lambda: operations._host(tutorial.host_id),
                "list/sdk": direct(lambda: sdk.containers()),
            },
            runs,
        )
        # logs on their own: dockerd keeps working a moment after a log stream was read, and whichever call
        # came next in a shared round paid for it
        medians.update(interleaved_medians_ms(
            {
                "logs/action": lambda: action("docker_container_logs", {"container_id": TALKER, "tail": 200}),
                "logs/sdk": direct(lambda: sdk.logs(TALKER, tail=200)),
            },
            runs,
        ))
        # restart: the SDK's restart, then an inspect for the status, is what the action answers with
        medians.update(interleaved_medians_ms(
            {
                "restart/action": lambda: action("docker_restart_container", {"container_id": TALKER, "timeout_s": 0}),
                "restart/sdk": direct(lambda: (sdk.restart(TALKER, timeout=0), sdk.inspect_container(TALKER))),
            },
            restart_runs,
            warmup=1,
        ))
        if profile_runs:
            profile(lambda: action("docker_list_containers", {}), direct(lambda: sdk.containers()), profile_runs)
        sdk.close()
    ratios = {}
    print(f"median ms, calls taking turns (list/logs: {runs} runs, restart: {restart_runs} runs), "
          f"API {sdk._version}:")
    for op, what in (("list", "docker_list_containers"), ("logs", "docker_container_logs tail=200"),
                     ("restart", "docker_restart_container timeout_s=0")):
        action_ms, sdk_ms = medians[f"{op}/action"], medians[f"{op}/sdk"]
        ratios[op] = action_ms / sdk_ms
        print(f"  {what:40s} run_action {action_ms:8.2f}   SDK {sdk_ms:8.2f}   ratio {ratios[op]:.2f}")
    service_ms = medians["list/service"]
    print(f"  {'(list: the service, without run_action)':40s} service    {service_ms:8.2f}   "
          f"SDK {medians['list/sdk']:8.2f}   ratio {service_ms / medians['list/sdk']:.2f}")
    engine_ms = medians["list/engine"]
    print(f"  {'(list: the engine adapter alone)':40s} adapter    {engine_ms:8.2f}   SDK {medians['list/sdk']:8.2f}   "
          f"ratio {engine_ms / medians['list/sdk']:.2f}")
    print(f"  {'(list: input checks / host row read)':40s} {medians['list/checks']:.3f} ms / "
          f"{medians['list/lookup']:.3f} ms (the lab's platform database is a SQLite file its server writes to)")
    print(f"goal: every ratio <= {GOAL}")
    return ratios


def profile(action_call, sdk_call, runs: int) -> None:  # noqa: ANN001
    """cProfile ``runs`` calls of each and print the functions with the most own and cumulative time."""
    import cProfile
    import pstats

    for label, call in (("run_action docker_list_containers", action_call), ("SDK containers()", sdk_call)):
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(runs):
            call()
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stdout)
        print(f"--- profile: {runs} x {label} ---")
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    sys.exit(main())
