"""Prepare a cluster's database (run in a subprocess with the platform's environment: ``python -m tests.cluster.seed``).

Migrates, loads the default catalog, bootstraps OpenBao's PKI (the root token of a ``bao server -dev``),
makes an operator and a fleet of ``--agents`` instances (each with an SDWAN peer, docker-engine assigned to
their template) and prints ``{"operator_token": ..., "agents": [[instance_id, agent_token], ...]}`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os

import django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, required=True)
    parser.add_argument("--prefix", default="cluster")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "powernode.settings")
    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from apps.modules.models import Module
    from apps.modules.services import module_assign_to_template
    from apps.nodes.services import instance_provision, template_create
    from apps.pki.adapters.vault import bootstrap
    from apps.sdwan.services import network_create, peer_attach
    from apps.system.services import operator_token_create
    from powernode.actors import Actor

    call_command("migrate", verbosity=0, interactive=False)
    call_command("loaddata", "default_catalog", verbosity=0)
    bootstrap(url=settings.VAULT_ADDR, token=settings.VAULT_TOKEN)
    admin = get_user_model().objects.create_user(f"{args.prefix}-admin")
    admin.groups.add(Group.objects.get(name="Platform admins"))
    actor = Actor(label="cluster-seed")
    template = template_create(name=f"{args.prefix}-template", actor=actor)
    network = network_create(name=f"{args.prefix}-net", actor=actor)
    agents = []
    for i in range(args.agents):
        provisioned = instance_provision(template_id=str(template.id), name=f"{args.prefix}-{i:05d}", actor=actor)
        peer_attach(network_id=str(network.id), node_instance_id=str(provisioned.instance.id), actor=actor)
        agents.append([str(provisioned.instance.id), provisioned.agent_token])
    module = Module.objects.get(name="docker-engine", lifecycle_state=Module.Lifecycle.LIVE)
    module_assign_to_template(template_id=str(template.id), module_id=str(module.id), actor=actor)
    token = operator_token_create(username=admin.username)
    print(json.dumps({"operator_token": token, "network_id": str(network.id), "agents": agents}))


if __name__ == "__main__":
    main()
