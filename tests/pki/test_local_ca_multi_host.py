"""With several platform hosts configured (POWERNODE_PLATFORM_HOSTS > 1) the local CA refuses to run: a system
check error at start-up and a clear 502 at first use. With Vault it is fine."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from apps.pki import services
from apps.pki.checks import local_ca_single_host_check
from powernode.errors import CaUnavailableError
from tests.csr import make_csr
from tests.deploy.helpers import clean_env, manage
from tests.openbao import OpenBaoServer, point_settings_at

pytestmark = pytest.mark.django_db

HOST = "host-0193a1b2-0000-7000-8000-0000000000e1"
OVERLAY = "fd00:abcd:7::1"


@pytest.fixture
def two_hosts(settings, local_ca_dir: Path):  # noqa: ANN001, ANN201 - pytest-django settings
    settings.VAULT_ADDR = ""
    settings.VAULT_TOKEN = ""
    settings.VAULT_ROLE_ID = ""
    settings.POWERNODE_PLATFORM_HOSTS = 2
    return settings


def test_the_system_check_refuses_the_local_ca_on_two_hosts(two_hosts) -> None:  # noqa: ANN001
    [error] = local_ca_single_host_check(None)
    assert error.id == "pki.E001" and error.is_serious()
    assert "POWERNODE_PLATFORM_HOSTS=2" in error.msg and "Vault" in error.hint
    two_hosts.POWERNODE_PLATFORM_HOSTS = 1
    assert local_ca_single_host_check(None) == []  # one host: the local CA is fine


def test_first_use_is_a_clear_502_and_status_says_why(two_hosts) -> None:  # noqa: ANN001
    with pytest.raises(CaUnavailableError) as info:
        services.ca_sign_host_csr(csr_pem=make_csr(), host_id=HOST, overlay_address=OVERLAY)
    assert info.value.status_code == 502
    assert "Configure Vault" in info.value.message and info.value.details["platform_hosts"] == 2

    answer = Client().get("/api/v1/pki/ca")
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert error["type"] == "CaUnavailableError" and "POWERNODE_PLATFORM_HOSTS=2" in error["message"]

    status = services.ca_status()  # never raises: reported
    assert status["ca"]["reachable"] is False and "POWERNODE_PLATFORM_HOSTS" in status["ca"]["error"]


@pytest.mark.vault
def test_vault_serves_several_hosts(two_hosts, openbao: OpenBaoServer) -> None:  # noqa: ANN001
    point_settings_at(two_hosts, openbao)
    two_hosts.POWERNODE_PLATFORM_HOSTS = 3
    assert local_ca_single_host_check(None) == []
    signed = services.ca_sign_host_csr(csr_pem=make_csr(), host_id=HOST, overlay_address=OVERLAY)
    assert signed.certificate.adapter == "VaultCaAdapter"


def test_manage_check_fails_in_a_fresh_process(tmp_path: Path) -> None:
    done = manage("check", env=clean_env(tmp_path, DJANGO_DEBUG="true", POWERNODE_PLATFORM_HOSTS="2"))
    assert done.returncode != 0
    assert "pki.E001" in done.stderr and "Configure Vault/OpenBao" in done.stderr
