"""A network's hub_endpoint cannot be set to anything but host:port from the admin (issue 11, items 2 and 6).

The admin's network page is read-only (changes go through actions); the model's validator still refuses a
bad value in any model form, so a form that someone adds later cannot bring the injection back.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError

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
def test_the_model_refuses_a_bad_endpoint(fleet, endpoint):
    network = SdwanNetwork.objects.get(pk=fleet["network"]["id"])
    network.hub_endpoint = endpoint
    with pytest.raises(DjangoValidationError) as refused:
        network.full_clean()
    assert "hub_endpoint" in refused.value.message_dict


def test_the_model_accepts_host_port(fleet):
    network = SdwanNetwork.objects.get(pk=fleet["network"]["id"])
    for endpoint in ("[fd00::1]:51820", "hub.example.org:51820", "192.0.2.1:51820"):
        network.hub_endpoint = endpoint
        network.full_clean()


def test_even_a_superuser_cannot_set_it_through_the_change_form(root_client, fleet):
    network = SdwanNetwork.objects.get(pk=fleet["network"]["id"])
    form = _form(network, "h:51820\n[Interface]\nPostUp = id")
    response = root_client.post(f"/admin/sdwan/sdwannetwork/{network.pk}/change/", form)
    assert response.status_code == 403
    assert SdwanNetwork.objects.get(pk=network.pk).hub_endpoint == ""
