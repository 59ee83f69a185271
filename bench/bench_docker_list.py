"""Median time of `list_containers` through the engine adapter vs the Docker SDK called directly on the
same daemon with the same certificates (issue 5 target: ratio at most 1.5). Needs root: it stands up a lab.

    sudo .venv/bin/python bench/bench_docker_list.py [--runs 50] [--containers 5]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker  # noqa: E402
from timing import interleaved_medians_ms, sdk_api_client  # noqa: E402

from apps.docker_hosts.adapters.engine import engine_for, forget_engine  # noqa: E402
from lab.netns import in_netns  # noqa: E402
from lab.proc import why_lab_cannot_run  # noqa: E402
from lab.topology import Lab  # noqa: E402
from lab.world import build_world  # noqa: E402


def sdk_client(endpoint: str, ca_pem: str, cert_pem: str, key_pem: str, directory: str) -> docker.DockerClient:
    paths = {}
    for name, text in (("ca", ca_pem), ("cert", cert_pem), ("key", key_pem)):
        paths[name] = os.path.join(directory, f"{name}.pem")
        Path(paths[name]).write_text(text)
    os.chmod(paths["key"], 0o600)
    tls = docker.tls.TLSConfig(client_cert=(paths["cert"], paths["key"]), ca_cert=paths["ca"], verify=True)
    # The daemon's API version, read with trust_env off (else REQUESTS_CA_BUNDLE would replace the CA).
    version = sdk_api_client(base_url=endpoint, tls=tls)._version
    client = docker.DockerClient(base_url=endpoint, tls=tls, version=version, timeout=60)
    # Without this the SDK would verify against REQUESTS_CA_BUNDLE instead (docker/docker-py#2433).
    client.api.trust_env = False
    return client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--containers", type=int, default=5)
    args = parser.parse_args()
    reason = why_lab_cannot_run()
    if reason:
        print(f"bench_docker_list: cannot run: {reason}", file=sys.stderr)
        return 2
    lab = Lab(f"pnb{secrets.token_hex(2)[:3]}-")
    lab.up()
    try:
        world = build_world(lab)
        material = {"endpoint": world.docker_endpoint, "ca_pem": world.ca.ca_pem,
                    "cert_pem": world.platform_client.cert_pem, "key_pem": world.platform_client.key_pem}
        # The platform's view: from its namespace, over the hub, to the node's overlay /128.
        with in_netns(lab.platform.name), tempfile.TemporaryDirectory() as tmp:
            engine = engine_for("host-bench", **material)
            engine.pull_image(world.image_ref)
            for i in range(args.containers):
                engine.create_container(image=world.image_ref, name=f"bench-{i}")
            sdk = sdk_client(directory=tmp, **material)
            assert len(engine.list_containers(all=True)) == len(sdk.api.containers(all=True)) == args.containers

            medians = interleaved_medians_ms({
                "adapter": lambda: engine_for("host-bench", **material).list_containers(all=True),
                "sdk_low": lambda: sdk.api.containers(all=True),
                "sdk_high": lambda: sdk.containers.list(all=True),
            }, args.runs)
            adapter_ms, sdk_low_ms, sdk_high_ms = medians["adapter"], medians["sdk_low"], medians["sdk_high"]
            sdk.close()
            forget_engine("host-bench")
        print(f"containers on the host: {args.containers}, runs: {args.runs}"
              " (median; the calls take turns, after 5 warm-up rounds)")
        print(f"adapter  engine_for(...).list_containers(all=True): {adapter_ms:8.2f} ms")
        print(f"SDK      client.api.containers(all=True):            {sdk_low_ms:8.2f} ms")
        print(f"SDK      client.containers.list(all=True):           {sdk_high_ms:8.2f} ms")
        print(f"ratio adapter / SDK api.containers: {adapter_ms / sdk_low_ms:.2f} (target <= 1.5)")
        print(f"ratio adapter / SDK containers.list: {adapter_ms / sdk_high_ms:.2f}")
        return 0 if adapter_ms / sdk_low_ms <= 1.5 else 1
    finally:
        left = lab.close()
        if left:
            print(f"bench_docker_list: lab left {left}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
