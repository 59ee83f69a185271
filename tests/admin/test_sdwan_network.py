"""The admin's SDWAN network form refuses a hub_endpoint that is not host:port (issue 11, item 2)."""

from __future__ import annotations

import pytest

from apps.sdwan.models import SdwanNetwork


def _form(network: SdwanNetwork, hub_endpoint: str) -> dict[str, str]:
    return {
        "name": network.name,
        "prefix": network.prefix,
        "hub_endpoint": hub_endpoint,
        "created_at_0": network.created_at.strftime("%Y-%m-%d"),
        "created_at_1": network.created_at.strftime("%H:%M:%S"),
    }


@pytest.mark.parametrize("endpoint", ["h:51820\n[Interface]\nPostUp = id", "hub.example.org", "fd00::1:51820"])
def test_a_bad_endpoint_is_a_form_error_and_changes_nothing(root_client, fleet, endpoint):
    network = SdwanNetwork.objects.get(pk=fleet["network"]["id"])
    response = root_client.post(f"/admin/sdwan/sdwannetwork/{network.pk}/change/", _form(network, endpoint))
    assert response.status_code == 200  # the form again, with its error
    assert "hub_endpoint" in response.context["adminform"].form.errors
    assert SdwanNetwork.objects.get(pk=network.pk).hub_endpoint == ""


def test_a_host_port_endpoint_is_saved(root_client, fleet):
    network = SdwanNetwork.objects.get(pk=fleet["network"]["id"])
    response = root_client.post(f"/admin/sdwan/sdwannetwork/{network.pk}/change/", _form(network, "[fd00::1]:51820"))
    assert response.status_code == 302
    assert SdwanNetwork.objects.get(pk=network.pk).hub_endpoint == "[fd00::1]:51820"
