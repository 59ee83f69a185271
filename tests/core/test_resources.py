"""The apps' read-only REST resources beyond the core ones: Docker hosts and issued certificates.

Each refuses a caller without its view permission (403 in DESIGN §2's shape), lists, filters and
retrieves; certificate output never carries key material.
"""

from __future__ import annotations

import pytest

from apps.docker_hosts.models import DockerHost
from apps.pki.models import IssuedCertificate

pytestmark = pytest.mark.contract

HOSTS = "/api/v1/docker/hosts/"
CERTS = "/api/v1/pki/certificates/"


@pytest.mark.parametrize(
    "path, perm, wrong",
    [(HOSTS, "docker_view", "instance_view"), (CERTS, "docker_view", "sdwan_view")],
)
def test_refused_without_the_view_permission(api_as, pending_host, path, perm, wrong):
    for client in (api_as("outsider").client, api_as(f"holder-of-{wrong}", perms=[wrong]).client):
        denied = client.get(path)
        assert denied.status_code == 403
        error = denied.json()["error"]
        assert error["type"] == "PermissionDenied" and f"system.{perm}" in error["message"]
        assert set(error) == {"type", "message", "details"}
    allowed = api_as(f"viewer-{perm}", perms=[perm]).client.get(path)
    assert allowed.status_code == 200 and allowed.json()["count"] >= 1


def test_anonymous_is_401(client, db):
    for path in (HOSTS, CERTS):
        response = client.get(path)
        assert response.status_code == 401 and response.json()["error"]["type"] == "NotAuthenticated"


def test_docker_hosts_list_filter_and_retrieve(api, pending_host):
    host_id = pending_host["host_id"]
    listed = api.client.get(HOSTS).json()
    assert [h["id"] for h in listed["results"]] == [host_id]
    host = listed["results"][0]
    assert host["status"] == "pending" and host["node_instance_id"] == pending_host["instance"]["id"]
    assert host["network_id"] == pending_host["network"]["id"]
    assert "client_key_encrypted" not in host and "PRIVATE KEY" not in str(listed)

    # the same filters as docker_list_hosts, with the same answers
    for query in ({"status": "pending"}, {"network_id": pending_host["network"]["id"]}, {}):
        rest = [h["id"] for h in api.client.get(HOSTS, query).json()["results"]]
        action = [h["id"] for h in api.ok("docker_list_hosts", query)["hosts"]]
        assert rest == action == [host_id], query
    assert api.client.get(HOSTS, {"status": "connected"}).json()["results"] == []
    other = "00000000-0000-0000-0000-000000000000"
    assert api.client.get(HOSTS, {"network_id": other}).json()["results"] == []
    bad = api.client.get(HOSTS, {"status": "sleeping"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "ValidationError"

    one = api.client.get(f"{HOSTS}{host_id}/")
    assert one.status_code == 200 and one.json()["id"] == host_id
    missing = api.client.get(f"{HOSTS}host-{other}/")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"


def test_certificates_list_filter_retrieve_and_no_key_material(api, pending_host):
    host_id = pending_host["host_id"]
    response = api.client.get(CERTS, {"host_id": host_id})
    assert response.status_code == 200
    certs = response.json()["results"]
    kinds = {c["kind"] for c in certs}
    assert IssuedCertificate.Kind.SERVER in kinds
    assert DockerHost.objects.get(pk=host_id).client_key_encrypted  # the platform does hold a key…
    body = response.content.decode()
    assert "PRIVATE KEY" not in body and "key_pem" not in body and "key_encrypted" not in body  # …never shown
    assert all(c["cert_pem"].startswith("-----BEGIN CERTIFICATE-----") for c in certs)

    server = next(c for c in certs if c["kind"] == "server")
    assert server["host_id"] == host_id and server["revoked"] is False and server["revoked_at"] is None
    by_kind = api.client.get(CERTS, {"kind": "server"}).json()["results"]
    assert [c["serial"] for c in by_kind] == [server["serial"]]
    assert api.client.get(CERTS, {"revoked": "true"}).json()["results"] == []
    assert len(api.client.get(CERTS, {"revoked": "false"}).json()["results"]) == len(certs)

    one = api.client.get(f"{CERTS}{server['id']}/")
    assert one.status_code == 200 and one.json()["serial"] == server["serial"]
    missing = api.client.get(f"{CERTS}00000000-0000-0000-0000-000000000000/")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"


def test_pki_plain_views_still_served_beside_the_resource(api, pending_host):
    assert api.client.get("/api/v1/pki/ca").status_code == 200
    assert api.client.get("/api/v1/pki/crl").status_code == 200


def test_instance_output_says_whether_the_agent_is_stale(api, fleet, settings):
    import datetime as dt

    from django.utils import timezone

    from apps.nodes.models import NodeInstance

    settings.POWERNODE_HEARTBEAT_INTERVAL_S = 60
    url = f"/api/v1/instances/{fleet['instance']['id']}/"
    assert api.client.get(url).json()["stale"] is True  # never seen
    NodeInstance.objects.update(last_heartbeat_at=timezone.now() - dt.timedelta(seconds=30))
    assert api.client.get(url).json()["stale"] is False
    NodeInstance.objects.update(last_heartbeat_at=timezone.now() - dt.timedelta(seconds=91))
    instance = api.client.get(url).json()
    assert instance["stale"] is True and instance["heartbeat_age_s"] >= 91


def test_runtime_fields_of_instances_are_in_the_api_schema_and_the_output(api, pending_host):
    # the Docker runtime adds docker_host_id through its provider; the schema must still document it
    schema = api.client.get("/api/v1/schema/", {"format": "json"}).json()
    instance = schema["components"]["schemas"]["NodeInstance"]["properties"]
    assert instance["docker_host_id"] == {"type": "string", "nullable": True, "readOnly": True}
    host = DockerHost.objects.get(pk=pending_host["host_id"])
    listed = api.client.get("/api/v1/instances/").json()["results"]
    by_id = {i["id"]: i["docker_host_id"] for i in listed}
    assert by_id[str(host.node_instance_id)] == host.id
    assert list(by_id.values()).count(host.id) == 1  # only its own instance points at the host
