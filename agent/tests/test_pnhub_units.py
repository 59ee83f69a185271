"""The hub's pure parts: names, validation, ruleset, nft JSON normalization, dump parsing, backoff."""

from __future__ import annotations

import base64
import hashlib

import pytest

from powernode_agent.config import ConfigError
from powernode_agent.hub.config import HubConfig, load_hub_config
from powernode_agent.hub.desired import DesiredError, interface_name, is_hub_interface, parse_desired
from powernode_agent.hub.nft import FirewallNetwork, normalize, render_ruleset
from powernode_agent.hub.runner import Hub, backoff_delay
from powernode_agent.hub.wg import matches, parse_dump, parse_endpoint, remembered_endpoints, render_config

KEY1 = base64.b64encode(b"\x01" * 32).decode()
KEY2 = base64.b64encode(b"\x02" * 32).decode()


def net(**over):
    data = {
        "network_id": "0193a1b2-0000-7000-8000-000000000001",
        "name": "net-a",
        "prefix": "fd00:abcd:1::/64",
        "hub_address": "fd00:abcd:1::1",
        "listen_port": 51820,
        "public_key": "",
        "peers": [{"public_key": KEY1, "allowed_ips": ["fd00:abcd:1::2/128"]}],
    }
    data.update(over)
    return data


def parse(*networks, **over):
    return parse_desired(
        {"desired_version": "v1", "networks": list(networks), **over}, interface_prefix="pnh"
    )


def test_interface_name_is_prefix_plus_sha256_hex_within_15_chars() -> None:
    nid = "0193a1b2-0000-7000-8000-000000000001"
    name = interface_name("pnh", nid)
    assert name == "pnh" + hashlib.sha256(nid.encode()).hexdigest()[:12]
    assert len(name) == 15 and len(interface_name("pnlab-h", nid)) == 15
    assert interface_name("pnh", nid) != interface_name("pnh", nid[:-1] + "2")
    assert is_hub_interface("pnh", name) and not is_hub_interface("pnh", "pnhost0")
    with pytest.raises(DesiredError):
        interface_name("toolongpfx", nid)


def test_a_valid_answer_parses_and_normalizes() -> None:
    desired = parse(net(prefix="fd00:ABCD:1:0::/64", hub_address="fd00:abcd:1:0::1"), poll_interval_s=2)
    (network,) = desired.networks
    assert network.prefix == "fd00:abcd:1::/64" and network.hub_address == "fd00:abcd:1::1"
    assert network.peers[0].allowed_ips == ("fd00:abcd:1::2/128",)
    assert desired.poll_interval_s == 2 and not desired.skipped


@pytest.mark.parametrize(
    "bad, reason",
    [
        ({"peers": [{"public_key": "not-a-key", "allowed_ips": ["fd00:abcd:1::2/128"]}]}, "base64"),
        ({"peers": [{"public_key": base64.b64encode(b"x" * 31).decode(), "allowed_ips": []}]}, "32-byte"),
        ({"peers": [{"public_key": KEY1, "allowed_ips": ["fd00:abcd:2::2/128"]}]}, "inside"),
        ({"peers": [{"public_key": KEY1, "allowed_ips": ["fd00:abcd:1::/120"]}]}, "/128"),
        ({"peers": [{"public_key": KEY1, "allowed_ips": ["fd00:abcd:1::1/128"]}]}, "hub's own"),
        (
            {
                "peers": [
                    {"public_key": KEY1, "allowed_ips": ["fd00:abcd:1::2/128"]},
                    {"public_key": KEY2, "allowed_ips": ["fd00:abcd:1::2/128"]},
                ]
            },
            "two peers",
        ),
        ({"prefix": "2001:db8::/64", "hub_address": "2001:db8::1", "peers": []}, "ULA"),
        ({"prefix": "10.0.0.0/24", "hub_address": "10.0.0.1", "peers": []}, "prefix"),
        ({"hub_address": "fd00:abcd:9::1"}, "hub_address"),
        ({"name": "evil\nname"}, "control"),
        ({"network_id": "../../etc"}, "network_id"),
        ({"network_id": "a\x00b"}, "control"),
        ({"listen_port": 0}, "listen_port"),
        ({"listen_port": 70000}, "listen_port"),
        ({"listen_port": True}, "listen_port"),
        ({"peers": [{"public_key": KEY1 + "\n", "allowed_ips": ["fd00:abcd:1::2/128"]}]}, "control"),
    ],
)
def test_a_bad_network_is_skipped_and_the_others_still_apply(bad: dict, reason: str) -> None:
    good = net(
        network_id="good",
        listen_port=51821,
        prefix="fd00:abcd:7::/64",
        hub_address="fd00:abcd:7::1",
        peers=[],
    )
    desired = parse(net(**bad), good)
    assert [n.network_id for n in desired.networks] == ["good"]
    (why,) = desired.skipped.values()
    assert reason in why


def test_whole_answer_errors_and_cross_network_clashes() -> None:
    with pytest.raises(DesiredError):
        parse_desired([], interface_prefix="pnh")
    with pytest.raises(DesiredError):
        parse_desired({"networks": "x"}, interface_prefix="pnh")
    with pytest.raises(DesiredError):
        parse_desired({"networks": [], "desired_version": "v\x1b"}, interface_prefix="pnh")
    desired = parse(
        net(),
        net(name="again"),
        net(network_id="other", prefix="fd00:abcd:2::/64", hub_address="fd00:abcd:2::1", peers=[]),
    )
    assert [n.network_id for n in desired.networks] == ["0193a1b2-0000-7000-8000-000000000001"]
    assert len(desired.skipped) == 2  # same id twice, same listen port


def _fw(n: int) -> list[FirewallNetwork]:
    return [FirewallNetwork(f"pnh00000000000{i}", f"fd00:abcd:{i}::1") for i in range(1, n + 1)]


def test_ruleset_with_no_networks_accepts_everything_and_is_one_transaction() -> None:
    text = render_ruleset([], [8000])
    assert text.splitlines()[:3] == [
        "table inet powernode_hub {}",
        "delete table inet powernode_hub",
        "table inet powernode_hub {",
    ]
    assert "policy drop" in text and "    accept" in text and "iifname" not in text
    assert "fwd" not in text


def test_ruleset_with_one_and_two_networks() -> None:
    one = render_ruleset(_fw(1), [8000])
    assert 'iifname != { "pnh000000000001" } oifname != { "pnh000000000001" } accept' in one
    assert 'iifname "pnh000000000001" oifname "pnh000000000001" accept' in one
    assert 'iifname "pnh000000000001" ip6 daddr fd00:abcd:1::1 tcp dport { 8000 } accept' in one
    assert "ct state established,related accept" in one
    two = render_ruleset(list(reversed(_fw(2))), [8000, 443, 8000])
    forward, inp = two.split("chain input")
    assert forward.index('iifname != { "pnh000000000001", "pnh000000000002" }') < forward.index(
        'iifname "pnh000000000001" oifname'
    )
    assert 'iifname "pnh000000000002" oifname "pnh000000000002" accept' in forward
    assert 'pnh000000000001" oifname "pnh000000000002' not in forward  # never across networks
    assert "tcp dport { 443, 8000 }" in inp and inp.rstrip().endswith('drop comment "dropped"\n  }\n}')
    assert render_ruleset(_fw(2), [8000]) == render_ruleset(list(reversed(_fw(2))), [8000])


def test_no_ports_means_no_accept_to_the_hub_address() -> None:
    text = render_ruleset(_fw(1), [])
    assert "tcp dport" not in text and "    counter drop" in text


def test_nft_json_normalization_strips_handles_counters_and_metainfo() -> None:
    def listing(handle: int, packets: int) -> dict:
        return {
            "nftables": [
                {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
                {"table": {"family": "inet", "name": "powernode_hub", "handle": handle}},
                {
                    "rule": {
                        "chain": "input",
                        "handle": handle + 3,
                        "expr": [{"counter": {"packets": packets, "bytes": packets * 80}}, {"drop": None}],
                    }
                },
            ]
        }

    assert normalize(listing(2, 0)) == normalize(listing(9, 1234))
    assert normalize(listing(2, 0))[0] == {"table": {"family": "inet", "name": "powernode_hub"}}
    changed = listing(2, 0)
    changed["nftables"][2]["rule"]["expr"][1] = {"accept": None}
    assert normalize(changed) != normalize(listing(2, 0))


DUMP = (
    "cHJpdmF0ZQ==\tPUBKEY=\t51820\toff\n"
    f"{KEY1}\t(none)\t[fd00:77::2]:40000\tfd00:abcd:1::2/128\t1733140000\t123\t456\toff\n"
    f"{KEY2}\t(none)\t(none)\t(none)\t0\t0\t0\t25\n"
)


def test_wg_show_dump_parsing() -> None:
    device = parse_dump(DUMP)
    assert device.public_key == "PUBKEY=" and device.listen_port == 51820
    first, second = device.peers
    assert (first.public_key, first.allowed_ips, first.latest_handshake, first.rx_bytes, first.tx_bytes) == (
        KEY1,
        ("fd00:abcd:1::2/128",),
        1733140000,
        123,
        456,
    )
    assert first.endpoint == "[fd00:77::2]:40000"
    assert second.allowed_ips == () and second.latest_handshake == 0 and second.endpoint is None
    assert "cHJpdmF0ZQ" not in repr(device)  # the private key is not kept


def test_config_and_match() -> None:
    (network,) = parse(net()).networks
    device = parse_dump(DUMP.replace(f"{KEY2}\t(none)\t(none)\t(none)\t0\t0\t0\t25\n", ""))
    assert matches(device, network, "PUBKEY=")
    assert not matches(device, network, "OTHER=")
    private = base64.b64encode(b"\x05" * 32).decode()
    text = render_config(private, network)
    assert f"PrivateKey = {private}" in text and "ListenPort = 51820" in text
    assert f"[Peer]\nPublicKey = {KEY1}\nAllowedIPs = fd00:abcd:1::2/128" in text


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("[fd00:77::2]:40000", "[fd00:77::2]:40000"),
        ("[FD00:0077:0::2]:40000", "[fd00:77::2]:40000"),
        ("[fe80::1%eth0]:51820", "[fe80::1%eth0]:51820"),
        ("198.18.0.7:51820", "198.18.0.7:51820"),
        ("198.18.0.7:0", None),
        ("198.18.0.7:65536", None),
        ("[fd00::1]", None),
        ("fd00::1:51820", None),  # an IPv6 endpoint without brackets is ambiguous
        ("host.example:51820", None),
        ("[fd00::1]:51820\nPublicKey = x", None),  # nothing may reach the config file but an endpoint
        ("[fe80::1%eth0\n]:1", None),
        ("(none)", None),
        (None, None),
        (51820, None),
    ],
)
def test_endpoints_are_parsed_strictly_and_normalised(text, normal) -> None:
    assert parse_endpoint(text) == normal


def test_a_lost_peer_is_rendered_with_its_endpoint_and_a_keepalive_the_others_as_before() -> None:
    (network,) = parse(
        net(
            peers=[
                {"public_key": KEY1, "allowed_ips": ["fd00:abcd:1::2/128"]},
                {"public_key": KEY2, "allowed_ips": ["fd00:abcd:1::3/128"]},
            ]
        )
    ).networks
    private = base64.b64encode(b"\x05" * 32).decode()
    text = render_config(private, network, {KEY2: "[fd00:77::3]:40001", KEY1: "bad\nEndpoint = x"})
    first, second = text.split("[Peer]")[1:]
    assert first.strip() == f"PublicKey = {KEY1}\nAllowedIPs = fd00:abcd:1::2/128"
    assert second.strip() == (
        f"PublicKey = {KEY2}\nAllowedIPs = fd00:abcd:1::3/128\n"
        "Endpoint = [fd00:77::3]:40001\nPersistentKeepalive = 25"
    )
    assert render_config(private, network) == render_config(private, network, {})


def test_endpoints_remembered_are_the_live_ones_over_the_known_for_desired_peers_only() -> None:
    (network,) = parse(net()).networks  # KEY1 only
    device = parse_dump(DUMP)  # KEY1 live at [fd00:77::2]:40000, KEY2 live without an endpoint
    assert remembered_endpoints({}, device, network) == {KEY1: "[fd00:77::2]:40000"}
    # a roamed peer: the live endpoint wins; a peer no longer desired is forgotten
    known = {KEY1: "[fd00:77::9]:1", KEY2: "[fd00:77::3]:2"}
    assert remembered_endpoints(known, device, network) == {KEY1: "[fd00:77::2]:40000"}
    # a peer the interface lost keeps the endpoint known before
    lost = parse_dump(DUMP.split("\n", 1)[0] + "\n")
    assert remembered_endpoints(known, lost, network) == {KEY1: "[fd00:77::9]:1"}


@pytest.mark.parametrize(
    ("content", "loaded"),
    [
        (None, {}),
        (b"not json", {}),
        (b"[1, 2]", {}),
        (b"\x80\x81 not utf-8", {}),
        (
            b'{"a": {"K1": "bad\\nEndpoint = x", "K2": "[FD00::1]:5"}, "b": "x", "c": {}}',
            {"a": {"K2": "[fd00::1]:5"}, "c": {}},
        ),
    ],
)
def test_a_broken_endpoints_file_reads_as_what_is_valid_in_it(tmp_path, content, loaded) -> None:
    hub = Hub(HubConfig(state_dir=tmp_path))
    if content is not None:
        hub.store.write("endpoints.json", content)
    assert hub._load_endpoints() == loaded


def test_an_endpoints_file_that_cannot_be_read_or_written_never_fails_a_reconcile(tmp_path) -> None:
    hub = Hub(HubConfig(state_dir=tmp_path))
    hub.store.path("endpoints.json").mkdir(parents=True)  # read and rename over it both fail
    assert hub._load_endpoints() == {}
    hub._endpoints = {"a": {}}
    hub._save_endpoints({"a": {KEY1: "[fd00::1]:5"}})
    assert hub._endpoints is None  # the next reconcile reads the file again and retries the write


def test_backoff_is_full_jitter_within_bounds() -> None:
    assert backoff_delay(0, rand=lambda: 1.0) == 1.0
    assert backoff_delay(3, rand=lambda: 1.0) == 8.0
    assert backoff_delay(50, rand=lambda: 1.0) == 60.0
    assert backoff_delay(5, rand=lambda: 0.0) == 0.0
    for attempt in range(12):
        for _ in range(50):
            assert 0.0 <= backoff_delay(attempt) <= min(60.0, 2.0**attempt)


def test_hub_settings_layering_and_limits(tmp_path) -> None:
    (tmp_path / "tok").write_text("pnh_0123456789ab_secret\n")
    config = load_hub_config(
        flags={"allow_ports": [8443], "state_dir": str(tmp_path)},
        env={
            "POWERNODE_URL": "https://hub.example:8000",
            "POWERNODE_HUB_TOKEN_FILE": str(tmp_path / "tok"),
            "POWERNODE_HUB_ALLOW_PORTS": "1,2",
            "POWERNODE_HUB_RECONCILE_INTERVAL": "10",
        },
    )
    config.validate()
    assert config.hub_token == "pnh_0123456789ab_secret" and config.allow_ports == [8443]
    assert config.reconcile_interval_s == 10 and config.ports() == [8443]
    assert HubConfig(platform_url="https://x.example:9443").ports() == [9443]
    assert HubConfig(platform_url="https://x.example").ports() == [443]
    for bad in (
        HubConfig(platform_url="https://x", hub_token="pna_agent"),
        HubConfig(platform_url="http://hub.example", hub_token="pnh_x"),
        HubConfig(reconcile_interval_s=31),
        HubConfig(interface_prefix="much-too-long"),
    ):
        with pytest.raises(ConfigError):
            bad.validate(need_platform=bool(bad.platform_url))
