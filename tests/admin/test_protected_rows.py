"""The admin changes protected rows only through actions: a staff user holding a model's plain Django
change/add/delete permissions (but no system.* permission) edits, adds or deletes nothing with the model
forms, and the certificate revoke action needs system.docker_provision."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import models
from django.forms.models import model_to_dict
from django.test import Client

from apps.docker_hosts.models import DockerHost
from apps.modules.models import Module, ModuleAssignment
from apps.nodes.models import NodeInstance, NodeTemplate
from apps.pki import services as pki
from apps.pki.models import IssuedCertificate
from apps.sdwan.models import AccessGrant, SdwanNetwork, SdwanPeer
from apps.sdwan.services import access_grant_create
from powernode.actors import Actor
from tests.csr import make_csr
from tests.factories import NodeTemplateFactory


def staff_with_model_perms(django_user_model, username: str, *codenames: str) -> Client:  # noqa: ANN001
    """A staff user holding exactly these Django model permissions ("app.codename"), no system.* one."""
    user = django_user_model.objects.create_user(username, password=f"pw-{username}", is_staff=True)
    for name in codenames:
        app_label, codename = name.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = Client()
    client.force_login(user)
    return client


def form_data(obj: models.Model, **changes: Any) -> dict[str, Any]:
    """The POST a model change form would send for ``obj`` with ``changes`` (date-times split in two)."""
    data: dict[str, Any] = {}
    for key, value in {**model_to_dict(obj), **changes}.items():
        if isinstance(value, dt.datetime):
            data[f"{key}_0"], data[f"{key}_1"] = value.strftime("%Y-%m-%d"), value.strftime("%H:%M:%S")
        elif value is None:
            data[key] = ""
        elif isinstance(value, bool):
            if value:
                data[key] = "on"
        else:
            data[key] = str(value.pk if isinstance(value, models.Model) else value)
    return data


def snapshot(obj: models.Model) -> dict[str, Any]:
    return model_to_dict(type(obj).objects.get(pk=obj.pk))


def perms_for(app_label: str, model: str) -> list[str]:
    return [f"{app_label}.{verb}_{model}" for verb in ("view", "change", "add", "delete")]


def test_peer_change_form_moves_no_address_and_sets_no_key(db, django_user_model, fleet):
    peer = SdwanPeer.objects.get(pk=fleet["peer"]["id"])
    before = snapshot(peer)
    client = staff_with_model_perms(django_user_model, "peer-editor", *perms_for("sdwan", "sdwanpeer"))
    data = form_data(
        peer, overlay_address="fd00:abcd:1::99", public_key="A" * 43 + "=", kind=SdwanPeer.Kind.DEVICE
    )
    response = client.post(f"/admin/sdwan/sdwanpeer/{peer.pk}/change/", data)
    assert response.status_code == 403
    assert snapshot(peer) == before


def test_network_change_form_sets_no_prefix_or_hub_endpoint(db, django_user_model, fleet):
    network = SdwanNetwork.objects.get(pk=fleet["network"]["id"])
    before = snapshot(network)
    client = staff_with_model_perms(django_user_model, "net-editor", *perms_for("sdwan", "sdwannetwork"))
    data = form_data(network, prefix="fd00:abcd::/48", hub_endpoint="evil.example:51820")
    response = client.post(f"/admin/sdwan/sdwannetwork/{network.pk}/change/", data)
    assert response.status_code == 403
    assert snapshot(network) == before


def test_instance_change_form_sets_no_template_or_status(db, django_user_model, fleet):
    instance = NodeInstance.objects.get(pk=fleet["instance"]["id"])
    other = NodeTemplateFactory(name="other-template")
    before = snapshot(instance)
    client = staff_with_model_perms(django_user_model, "node-editor", *perms_for("nodes", "nodeinstance"))
    data = form_data(instance, node_template=other.pk, status=NodeInstance.Status.DELETED)
    response = client.post(f"/admin/nodes/nodeinstance/{instance.pk}/change/", data)
    assert response.status_code == 403
    assert snapshot(instance) == before


def test_module_change_form_makes_no_module_live(db, django_user_model, catalog):
    module = catalog["k3s-server"]
    before = snapshot(module)
    client = staff_with_model_perms(django_user_model, "module-editor", *perms_for("modules", "module"))
    data = form_data(module, lifecycle_state=Module.Lifecycle.LIVE, blessed=True)
    response = client.post(f"/admin/modules/module/{module.pk}/change/", data)
    assert response.status_code == 403
    assert snapshot(module) == before


PROTECTED = [
    ("sdwan", "sdwanpeer", SdwanPeer),
    ("sdwan", "sdwannetwork", SdwanNetwork),
    ("sdwan", "accessgrant", AccessGrant),
    ("nodes", "nodeinstance", NodeInstance),
    ("nodes", "nodetemplate", NodeTemplate),
    ("modules", "module", Module),
    ("modules", "moduleassignment", ModuleAssignment),
    ("pki", "issuedcertificate", IssuedCertificate),
    ("docker_hosts", "dockerhost", DockerHost),
]


@pytest.mark.parametrize(("app_label", "model_name", "model"), PROTECTED, ids=[p[1] for p in PROTECTED])
def test_no_add_or_delete_through_the_model_admin(db, django_user_model, pending_host, app_label, model_name, model):
    # the pending host's fleet has an assignment and a host; a certificate and a grant give every protected model a row
    pki.ca_sign_host_csr(csr_pem=make_csr(), host_id="host-protected", overlay_address="fd00:abcd:1::7")
    access_grant_create(network_id=pending_host["network"]["id"], device_name_hint="laptop", actor=Actor.system())
    obj = model.objects.first()
    assert obj is not None
    count = model.objects.count()
    client = staff_with_model_perms(django_user_model, "row-editor", *perms_for(app_label, model_name))
    base = f"/admin/{app_label}/{model_name}/"
    assert client.get(f"{base}{obj.pk}/change/").status_code == 200  # still shown, read-only
    assert client.get(f"{base}add/").status_code == 403
    assert client.post(f"{base}add/", form_data(obj)).status_code == 403
    assert client.post(f"{base}{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    client.post(base, {"action": "delete_selected", "_selected_action": [str(obj.pk)], "post": "yes"})
    assert model.objects.count() == count


@pytest.fixture
def certificate() -> IssuedCertificate:
    signed = pki.ca_sign_host_csr(csr_pem=make_csr(), host_id="host-admin", overlay_address="fd00::7")
    return signed.certificate


def test_revoke_selected_without_docker_provision_revokes_nothing(db, django_user_model, certificate):
    client = staff_with_model_perms(
        django_user_model, "cert-editor", *perms_for("pki", "issuedcertificate")
    )
    listing = client.get("/admin/pki/issuedcertificate/").content.decode()
    assert 'value="revoke_selected"' not in listing
    client.post(
        "/admin/pki/issuedcertificate/",
        {"action": "revoke_selected", "_selected_action": [str(certificate.pk)]},
    )
    assert IssuedCertificate.objects.get(pk=certificate.pk).revoked_at is None


def test_revoke_selected_with_docker_provision_revokes(db, django_user_model, certificate):
    client = staff_with_model_perms(
        django_user_model, "cert-revoker", "pki.view_issuedcertificate", "system.docker_provision"
    )
    response = client.post(
        "/admin/pki/issuedcertificate/",
        {"action": "revoke_selected", "_selected_action": [str(certificate.pk)]},
    )
    assert response.status_code == 302
    assert IssuedCertificate.objects.get(pk=certificate.pk).revoked_at is not None


def test_access_grant_revoke_action_runs_the_action(db, django_user_model, api, fleet):
    grant = api.ok(
        "system_sdwan_create_access_grant", {"network_id": fleet["network"]["id"], "device_name_hint": "laptop"}
    )["grant"]
    viewer = staff_with_model_perms(django_user_model, "grant-viewer", *perms_for("sdwan", "accessgrant"))
    viewer.post("/admin/sdwan/accessgrant/", {"action": "revoke_selected", "_selected_action": [grant["id"]]})
    assert AccessGrant.objects.get(pk=grant["id"]).revoked_at is None

    manager = staff_with_model_perms(
        django_user_model, "grant-manager", "sdwan.view_accessgrant", "system.sdwan_manage"
    )
    response = manager.post(
        "/admin/sdwan/accessgrant/", {"action": "revoke_selected", "_selected_action": [grant["id"]]}
    )
    assert response.status_code == 302
    assert AccessGrant.objects.get(pk=grant["id"]).revoked_at is not None
