"""The platform logs in to a real OpenBao with an AppRole whose tokens live seconds, and keeps signing and writing
KV secrets well past the token's max TTL: renew-self before expiry, a new login when renewal is refused."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
from django.core.management import call_command

from apps.pki import services
from apps.pki.adapters.vault import PLATFORM_POLICY, VaultAuth
from apps.pki.kv import get_kv_adapter, get_vault_auth
from powernode.errors import CaUnavailableError
from tests.csr import make_csr
from tests.openbao import OpenBaoServer, point_settings_at

pytestmark = [pytest.mark.vault, pytest.mark.django_db]

TOKEN_TTL_S = 3
TOKEN_MAX_TTL_S = 8
RUN_S = 20  # more than twice the max TTL: at least two logins and renewals in between


def _bootstrap_approle(server: OpenBaoServer, secret_id_file: Path) -> str:
    out = io.StringIO()
    call_command(
        "pki_bootstrap_vault",
        "--url",
        server.url,
        "--token",
        server.token,
        "--approle",
        "--approle-token-ttl",
        f"{TOKEN_TTL_S}s",
        "--approle-token-max-ttl",
        f"{TOKEN_MAX_TTL_S}s",
        "--secret-id-file",
        str(secret_id_file),
        stdout=out,
    )
    text = out.getvalue()
    assert f"approle:{PLATFORM_POLICY}" in text and "Vault PKI ready" in text
    assert secret_id_file.stat().st_mode & 0o777 == 0o600
    return re.search(r"^VAULT_ROLE_ID=(\S+)$", text, re.M).group(1)


@pytest.fixture
def approle(settings, openbao: OpenBaoServer, tmp_path: Path) -> VaultAuth:  # noqa: ANN001 - pytest-django settings
    secret_id_file = tmp_path / "secret-id"
    role_id = _bootstrap_approle(openbao, secret_id_file)
    point_settings_at(settings, openbao)
    settings.VAULT_TOKEN = ""  # the AppRole only: no static token to fall back on
    settings.VAULT_ROLE_ID = role_id
    settings.VAULT_SECRET_ID = ""
    settings.VAULT_SECRET_ID_FILE = str(secret_id_file)
    auth = get_vault_auth()
    assert auth is not None and auth.method == "approle"
    return auth


def test_signing_and_kv_writes_go_on_past_the_token_max_ttl(approle: VaultAuth, openbao: OpenBaoServer) -> None:
    first_token = approle.token()
    root = hvac.Client(openbao.url, token=openbao.token)
    looked_up = root.auth.token.lookup(first_token)["data"]
    assert looked_up["policies"] == ["default", PLATFORM_POLICY]
    assert 0 < looked_up["ttl"] <= TOKEN_TTL_S

    kv = get_kv_adapter()
    started = time.monotonic()
    rounds = 0
    while time.monotonic() - started < RUN_S:
        signed = services.ca_sign_host_csr(
            csr_pem=make_csr(), host_id=f"host-approle-{rounds}", overlay_address=f"fd00:abcd:5::{rounds + 1:x}"
        )
        assert signed.certificate.adapter == "VaultCaAdapter"
        assert kv.write(f"powernode/test-approle/{rounds % 3}", {"round": str(rounds)}) >= 1
        rounds += 1
        time.sleep(0.5)

    assert approle.renewals >= 1, "renewed before expiry"
    assert approle.logins >= 2, "logged in again once the max TTL refused renewal"
    with pytest.raises(hvac.exceptions.Forbidden):  # the first token is long gone, the platform is not
        hvac.Client(openbao.url, token=first_token).auth.token.lookup_self()
    assert services.ca_status()["vault"]["credential"] == "approle"


def test_a_wrong_secret_id_is_a_clear_502_not_a_crash(approle: VaultAuth, settings, tmp_path: Path) -> None:  # noqa: ANN001
    wrong = tmp_path / "wrong-secret-id"
    wrong.write_text("00000000-0000-0000-0000-000000000000\n")
    settings.VAULT_SECRET_ID_FILE = str(wrong)
    with pytest.raises(CaUnavailableError) as info:
        services.ca_sign_host_csr(csr_pem=make_csr(), host_id="host-approle-x", overlay_address="fd00:abcd:5::ff")
    assert info.value.status_code == 502
    status = services.ca_status()
    assert status["vault"]["reachable"] is False and "secret" in status["vault"]["error"].lower()


def test_an_approle_token_revoked_out_of_band_is_replaced_by_a_new_login(
    approle: VaultAuth, openbao: OpenBaoServer
) -> None:
    """An operator (or Vault's own tidy) revokes the platform's token: the next signature and KV write get a
    403, log in again and go through, with no error reaching the caller."""
    kv = get_kv_adapter()
    assert kv.write("powernode/test-approle/revoked", {"round": "0"}) >= 1
    token = approle.token()
    logins = approle.logins
    hvac.Client(openbao.url, token=openbao.token).auth.token.revoke(token)

    signed = services.ca_sign_host_csr(
        csr_pem=make_csr(), host_id="host-approle-revoked", overlay_address="fd00:abcd:5::ff"
    )
    assert signed.certificate.adapter == "VaultCaAdapter"
    assert approle.logins == logins + 1 and approle.token() != token
    hvac.Client(openbao.url, token=openbao.token).auth.token.revoke(approle.token())
    assert kv.write("powernode/test-approle/revoked", {"round": "1"}) >= 2
    assert kv.read("powernode/test-approle/revoked") == {"round": "1"}
    assert approle.logins == logins + 2
