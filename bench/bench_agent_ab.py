"""Before/after: CPU per agent request in two checkouts of powernode, measured in one run as a ratio.

Each checkout runs in its own worker process (Django's full request stack through the test client:
middleware, DRF, agent auth, the SQL) against its own fresh PostgreSQL database. The driver alternates
short rounds between the two workers, so machine noise (other tenants, CPU frequency) hits both alike,
and prints the medians and their ratio for heartbeats and complete docker handshake walks
(installing → wants_cert → wants_config → ready). CPU time of the worker process only: PostgreSQL's
share is not counted (it runs the same SQL in both unless a change touches the queries).

Run: ``.venv/bin/python bench/bench_agent_ab.py --before /path/to/old/checkout [--after .] [--rounds 20]``
(``git worktree add /tmp/before <commit>`` gives an old checkout; both use this venv).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEARTBEAT, HANDSHAKE = "/api/v1/agent/heartbeat", "/api/v1/runtime/handshake"


def worker(root: str, walks: int) -> None:
    """Set up a fleet in ``root``'s code, then answer ``hb N`` / ``walk N`` lines with CPU ms per op."""
    sys.path[:0] = [root, str(Path(root) / "bench")]
    var = tempfile.mkdtemp(prefix="pn-ab-")
    os.environ.update(
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="bench-" + "k" * 50,
        POWERNODE_ENCRYPTION_KEY="zKj1x9Yc2pZ3bQYQ3Jv8cG7r1d2mY5qXG8y0m7z6W2Q=",
        POWERNODE_VAR_DIR=var,
    )
    from django_bench import setup_postgres_django  # the checkout's own helper

    setup_postgres_django(f"powernode_bench_ab_{os.getpid()}")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.x509.oid import NameOID
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from powernode.actors import Actor

    try:
        from powernode.registry import run_action
    except ImportError:  # checkouts before the kernel move
        from apps.system.registry import run_action

    settings.ALLOWED_HOSTS = ["*"]
    call_command("loaddata", "default_catalog", verbosity=0)
    call_command("pki_init_local_ca", verbosity=0, stdout=io.StringIO())  # stdout is our protocol
    actor = Actor.for_user(get_user_model().objects.create_superuser("bench", "bench@localhost", "pw"))

    def act(action_name: str, **payload: object) -> dict:
        return run_action(name=action_name, actor=actor, payload=payload)

    template = act("system_create_node_template", name="bench")["template"]["id"]
    network = act("system_sdwan_create_network", name="bench")["network"]["id"]

    def instance(name: str) -> str:
        made = act("system_provision_instance", template_id=template, name=name)
        act("system_sdwan_attach_peer", network_id=network, node_instance_id=made["instance"]["id"])
        return made["agent_token"]

    beating = [instance(f"hb-{i}") for i in range(20)]
    docker = next(m for m in act("system_list_modules")["modules"] if m["name"] == "docker-engine")
    act("system_assign_module_to_template", template_id=template, module_id=docker["id"])
    walking = [instance(f"walk-{i}") for i in range(walks)]
    csrs = [
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")]))
        .sign(ed25519.Ed25519PrivateKey.generate(), None)
        .public_bytes(serialization.Encoding.PEM)
        .decode()
        for _ in walking
    ]
    client = Client()

    def post(path: str, token: str, body: dict) -> None:
        answer = client.post(
            path, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
        )
        if answer.status_code != 200:
            raise SystemExit(f"{root}: {path} answered {answer.status_code}: {answer.content[:300]!r}")

    beat = {"agent_version": "0.1.0", "runtimes": {"docker": {"phase": "none"}}}
    for token in beating:
        post(HEARTBEAT, token, beat)  # warm up
    walked = 0
    print("ready", flush=True)
    for line in sys.stdin:
        command, count = line.split()
        n = int(count)
        start = time.process_time()
        if command == "hb":
            for i in range(n):
                post(HEARTBEAT, beating[i % len(beating)], beat)
        else:
            for token, csr in zip(walking[walked : walked + n], csrs[walked : walked + n], strict=True):
                post(HANDSHAKE, token, {"runtime": "docker", "phase": "installing"})
                post(HANDSHAKE, token, {"runtime": "docker", "phase": "wants_cert", "csr_pem": csr})
                post(HANDSHAKE, token, {"runtime": "docker", "phase": "wants_config"})
                post(HANDSHAKE, token, {"runtime": "docker", "phase": "ready", "version": "20.10.24"})
            walked += n
        print((time.process_time() - start) / n * 1000, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the older checkout")
    parser.add_argument("--after", default=str(Path(__file__).resolve().parent.parent), help="default: this one")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--heartbeats", type=int, default=200, help="per round")
    parser.add_argument("--walks", type=int, default=20, help="handshake walks per round")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.rounds * args.walks)
    sides = {"before": str(Path(args.before).resolve()), "after": str(Path(args.after).resolve())}
    procs = {
        side: subprocess.Popen(
            [sys.executable, __file__, "--before", "-", "--worker", root, "--rounds", str(args.rounds),
             "--walks", str(args.walks)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tempfile.gettempdir(),
        )
        for side, root in sides.items()
    }
    try:
        for side, proc in procs.items():
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit(f"the {side} worker ({sides[side]}) did not start")

        def run(side: str, command: str) -> float:
            procs[side].stdin.write(command + "\n")
            procs[side].stdin.flush()
            return float(procs[side].stdout.readline())

        results: dict[str, dict[str, list[float]]] = {side: {"hb": [], "walk": []} for side in procs}
        for r in range(args.rounds):
            order = ("before", "after") if r % 2 == 0 else ("after", "before")
            for what, command in (("hb", f"hb {args.heartbeats}"), ("walk", f"walk {args.walks}")):
                for side in order:
                    results[side][what].append(run(side, command))
        print(f"before: {sides['before']}\nafter:  {sides['after']}")
        print(f"{args.rounds} alternating rounds; CPU of the Django process per operation (PostgreSQL not counted)")
        for what, label in (("hb", "heartbeat"), ("walk", "handshake walk (4 requests)")):
            old, new = results["before"][what], results["after"][what]
            before, after = statistics.median(old), statistics.median(new)
            paired = statistics.median(b / a for a, b in zip(old, new, strict=True))
            print(f"{label}: before {before:.3f} ms, after {after:.3f} ms; after/before {after / before:.3f} "
                  f"(median of paired rounds {paired:.3f})")
    finally:
        for proc in procs.values():
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
