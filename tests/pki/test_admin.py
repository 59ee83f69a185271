"""Admin pages for issued certificates and the KV outbox render, and the revoke action revokes."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.pki import services
from apps.pki.models import IssuedCertificate
from tests.csr import make_csr
from tests.factories import VaultKvOutboxFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(django_user_model) -> Client:  # noqa: ANN001
    user = django_user_model.objects.create_superuser("root-admin", "root@localhost", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_changelists_render_with_filters_and_search(admin_client_: Client) -> None:
    signed = services.ca_sign_host_csr(csr_pem=make_csr(), host_id="host-admin", overlay_address="fd00::7")
    VaultKvOutboxFactory(path="powernode/hosts/host-admin/platform-client")
    page = admin_client_.get("/admin/pki/issuedcertificate/", {"q": "host-admin", "revoked": "no"})
    assert page.status_code == 200 and signed.certificate.serial.encode() in page.content
    page = admin_client_.get("/admin/pki/vaultkvoutbox/", {"status": "pending"})
    assert page.status_code == 200 and b"host-admin" in page.content
    detail = admin_client_.get(f"/admin/pki/issuedcertificate/{signed.certificate.pk}/change/")
    assert detail.status_code == 200


def test_revoke_action(admin_client_: Client) -> None:
    signed = services.ca_sign_host_csr(csr_pem=make_csr(), host_id="host-admin", overlay_address="fd00::7")
    response = admin_client_.post(
        "/admin/pki/issuedcertificate/",
        {"action": "revoke_selected", "_selected_action": [str(signed.certificate.pk)]},
    )
    assert response.status_code == 302
    row = IssuedCertificate.objects.get(pk=signed.certificate.pk)
    assert row.revoked_at is not None and row.revocation_reason == "revoked in the admin"
