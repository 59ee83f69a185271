"""The tutorial lab's two speed targets (issue 5), measured on the real platform, agent and dockerd:

1. assignment → ``connected`` with dockerd already installed and the shipped 60 s heartbeat (the agent
   watches; target at most 10 s), from the platform's own event times, over a few assign → connected →
   decommission → unassign rounds;
2. ``docker_list_containers`` through the platform action — over HTTP (the shipped server, scripts/serve.sh:
   gunicorn + uvicorn worker + Django + run_action) and as an in-process ``run_action`` call — vs the Docker
   SDK called directly on the same daemon with the platform's own client certificate for that host; medians,
   the calls taking turns. Prints ``ratio http_action_vs_sdk`` (goal <= 1.5) and ``ratio run_action_vs_sdk``
   (goal <= 1.2) (issue 15).

Needs root (it stands up the lab):  sudo .venv/bin/python bench/bench_lab_connect.py [--rounds 3] [--runs 50]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import interleaved_medians_ms, sdk_api_client  # noqa: E402

from lab.netns import in_netns  # noqa: E402
from lab.platform import platform_env  # noqa: E402
from lab.proc import why_lab_cannot_run  # noqa: E402
from lab.tutorial import CONTAINER_NAME, Tutorial, connected_seconds  # noqa: E402


def one_round(tutorial: Tutorial, *, last: bool) -> tuple[float, float]:
    """assign → provisioned; (platform event seconds, seconds seen by the operator polling the API)."""
    seen_before = len(tutorial.events)
    started = time.monotonic()
    tutorial.assign()
    tutorial.watch_events()
    polled = time.monotonic() - started
    tutorial.connected()
    platform = connected_seconds(tutorial.events[seen_before:])
    if not last:
        tutorial.decommission()
        tutorial.unassign()
    return platform or float("nan"), polled


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="assign → connected rounds (default 3)")
    parser.add_argument("--runs", type=int, default=200, help="list calls per variant (default 200)")
    parser.add_argument(
        "--production",
        action="store_true",
        help="the lab's platform on production settings (DJANGO_DEBUG=false, its own keys) instead of make run's",
    )
    args = parser.parse_args()
    reason = why_lab_cannot_run()
    if reason:
        print(f"bench_lab_connect: cannot run: {reason}", file=sys.stderr)
        return 2
    tutorial = Tutorial(f"pnb{secrets.token_hex(2)[:3]}-", out=lambda line: None)
    if args.production:
        from cryptography.fernet import Fernet

        tutorial.platform.extra_env.update(
            DJANGO_DEBUG="false",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
            POWERNODE_ENCRYPTION_KEY=Fernet.generate_key().decode(),
            DJANGO_ALLOWED_HOSTS="*",  # the server listens on the lab's service address only
        )
    try:
        started = time.monotonic()
        tutorial.build()
        print(
            f"lab with platform server and agent built in {time.monotonic() - started:.1f} s "
            f"(heartbeat {tutorial.platform.heartbeat_interval_s} s, dockerd installed; platform settings: "
            f"{'production, DJANGO_DEBUG=false' if args.production else 'make run, DJANGO_DEBUG=true'}, SQLite)"
        )
        rounds = [one_round(tutorial, last=i == args.rounds - 1) for i in range(args.rounds)]
        for i, (platform_s, polled_s) in enumerate(rounds, 1):
            print(
                f"round {i}: assignment → connected {platform_s:5.2f} s (event times), "
                f"{polled_s:5.2f} s (operator polling recent_events every 0.1 s)"
            )
        worst = max(r[0] for r in rounds)
        print(
            f"assignment → connected: median {statistics.median(r[0] for r in rounds):.2f} s, "
            f"worst {worst:.2f} s (target <= 10 s; the seed tutorial quotes 2-3 minutes)"
        )

        tutorial.pull()
        tutorial.create_container()
        ratio = list_ratio(tutorial, args.runs)
        return 0 if worst <= 10 and ratio <= 1.5 else 1
    finally:
        left = tutorial.close()
        if left:
            print(f"bench_lab_connect: lab left {left}", file=sys.stderr)


def list_ratio(tutorial: Tutorial, runs: int) -> float:
    """docker_list_containers: HTTP action, in-process run_action, Docker SDK; returns HTTP / SDK."""
    import docker

    # This process becomes a platform process too (same database and CA as the lab's server).
    os.environ.update(platform_env(tutorial.platform.var_dir, extra=tutorial.platform.extra_env))
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from powernode.actors import Actor
    from powernode.registry import run_action

    actor = Actor.for_user(get_user_model().objects.get(username=tutorial.platform.operator))
    payload = {"host_id": tutorial.host_id}
    material = tutorial.platform.side("platform-client", "--host-id", tutorial.host_id)
    platform_ns = tutorial.lab.platform.name
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name in ("chain_pem", "cert_pem", "key_pem"):
            paths[name] = Path(tmp) / name
            paths[name].write_text(material[name])
        os.chmod(paths["key_pem"], 0o600)
        tls = docker.tls.TLSConfig(
            client_cert=(str(paths["cert_pem"]), str(paths["key_pem"])),
            ca_cert=str(paths["chain_pem"]),
            verify=True,
        )
        with in_netns(platform_ns):  # trust_env off: else REQUESTS_CA_BUNDLE replaces the host's CA
            sdk = sdk_api_client(base_url=material["api_endpoint"], tls=tls)

        def http() -> object:
            status, body = tutorial.platform.call("docker_list_containers", payload)
            assert status == 200 and body["containers"], body
            return body

        def in_process() -> object:
            with in_netns(platform_ns):
                return run_action(name="docker_list_containers", actor=actor, payload=payload)

        def direct() -> object:
            with in_netns(platform_ns):
                return sdk.containers()

        high = docker.DockerClient(base_url=material["api_endpoint"], tls=tls, version=sdk._version, timeout=60)
        high.api.trust_env = False

        def direct_high() -> object:
            with in_netns(platform_ns):
                return high.containers.list()

        assert [c["name"] for c in in_process()["containers"]] == [CONTAINER_NAME]
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.enable()
            for _ in range(200):
                in_process()
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(int(os.environ.get("BENCH_PROFILE_TOP", "30")))
        assert len(direct()) == 1

        def http_floor() -> object:
            # A read that touches no daemon: what any action costs over HTTP here.
            return tutorial.platform.call("system_list_modules")

        def http_transport() -> object:
            # /healthz: answered by the first middleware, no database: the client, the hop and the server
            response = tutorial.platform.get("/healthz")
            assert response.status_code == 200, response.text
            return response

        medians = interleaved_medians_ms(
            {
                "http": http,
                "run_action": in_process,
                "sdk": direct,
                "sdk_high": direct_high,
                "http_floor": http_floor,
                "http_transport": http_transport,
            },
            runs,
        )
        sdk.close()
        high.close()
    http_ms, action_ms, sdk_ms = medians["http"], medians["run_action"], medians["sdk"]
    print(f"docker_list_containers, 1 container, median of {runs} each (calls take turns, 5 warm-up rounds):")
    print(f"  HTTP  POST /api/v1/actions/docker_list_containers (serve.sh, token):     {http_ms:7.2f} ms")
    floor_ms = medians["http_floor"]
    print(f"  HTTP  POST /api/v1/actions/system_list_modules (no daemon: HTTP floor):  {floor_ms:7.2f} ms")
    transport_ms = medians["http_transport"]
    print(f"  HTTP  GET /healthz (client, hop and server only: no Django view, no DB):  {transport_ms:7.2f} ms")
    print(f"  run_action('docker_list_containers') in process (permission, schema):   {action_ms:7.2f} ms")
    print(f"  Docker SDK APIClient.containers() with the platform's client cert:      {sdk_ms:7.2f} ms")
    high_ms = medians["sdk_high"]
    print(f"  Docker SDK DockerClient.containers.list() (inspects each):             {high_ms:7.2f} ms")
    print(f"ratio http_action_vs_sdk {http_ms / sdk_ms:.2f}")
    print(f"ratio run_action_vs_sdk {action_ms / sdk_ms:.2f}")
    return http_ms / sdk_ms


if __name__ == "__main__":
    sys.exit(main())
