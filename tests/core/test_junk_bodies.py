"""Junk bodies for every action and both agent endpoints: always a 4xx in the error shape, nothing written.

Every registered action (``powernode.registry.all_actions()``) and ``POST /api/v1/agent/heartbeat`` and
``/api/v1/runtime/handshake`` get non-JSON, JSON that is not an object, deep nesting, huge and oversize
bodies, unicode and NUL, and, for every property of the input schema, each JSON type the property's
schema refuses (put into an otherwise plausible body naming real objects, so a value that slipped
through validation would reach the service). No answer may be a 5xx or HTML, and no row may appear.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.db import DatabaseError, transaction
from jsonschema import Draft202012Validator
from rest_framework.test import APIClient

from powernode.registry import all_actions, get_action
from tests.csr import make_csr
from tests.factories import HubTokenFactory

pytestmark = [pytest.mark.contract, pytest.mark.django_db]

ACTIONS = [a.name for a in all_actions()]
NUL = "a\u0000b"
JUNK_TEXT = [NUL, "a\ud800b"]  # a NUL (PostgreSQL text refuses it), a lone surrogate (not encodable as UTF-8)

# one value of each JSON type; a property gets every one its own schema refuses
SAMPLES: list[Any] = [
    "junk", "", NUL, "\ud800", 7, -1, 0, 2**70, 1.5, True, False, None, [], [1, "x"], {}, {"a": 1},
]

RAW_JUNK: list[tuple[str, bytes | str, str]] = [
    ("not json", b"not json", "application/json"),
    ("truncated object", b'{"name": ', "application/json"),
    ("python literal", b"{'name': 'x'}", "application/json"),
    ("trailing garbage", b'{"name": "x"} junk', "application/json"),
    ("invalid utf-8", b'{"name": "\xff\xfe"}', "application/json"),
    ("utf-16", '{"name": "x"}'.encode("utf-16"), "application/json"),
    ("NaN", b'{"name": NaN}', "application/json"),
    ("html", b"<html><body>hi</body></html>", "text/html"),
    ("form", b"name=x&id=1", "application/x-www-form-urlencoded"),
    ("plain text", b"name=x", "text/plain"),
    ("array", b"[]", "application/json"),
    ("array of objects", b'[{"name": "x"}]', "application/json"),
    ("string", b'"junk"', "application/json"),
    ("number", b"42", "application/json"),
    ("float", b"1e400", "application/json"),
    ("null", b"null", "application/json"),
    ("true", b"true", "application/json"),
    ("deep objects", ('{"a":' * 9000 + "1" + "}" * 9000).encode(), "application/json"),
    ("deep arrays", ("[" * 30000 + "]" * 30000).encode(), "application/json"),
    ("deep value", ('{"name":' + "[" * 30000 + "]" * 30000 + "}").encode(), "application/json"),
    ("unknown keys", json.dumps({"\u0000": 1, "\u202e": 2, "x" * 1000: 3}).encode(), "application/json"),
    ("huge string", json.dumps({"name": "x" * 60_000}).encode(), "application/json"),
    ("oversize", json.dumps({"name": "x" * 200_000}).encode(), "application/json"),
    ("many keys", json.dumps({f"k{i}": i for i in range(5000)}).encode(), "application/json"),
]


def counts() -> dict[str, int]:
    """Rows per table of every model of the project and of auth (users, groups, permissions)."""
    return {
        m._meta.label: m._default_manager.count()
        for m in django_apps.get_models()
        if m._meta.managed and not m._meta.proxy and m.__module__.startswith(("apps.", "django.contrib.auth"))
    }


def wrong_values(schema: dict[str, Any]) -> list[Any]:
    """The samples the property's own schema refuses (a type it does not take, a NUL it does not match...)."""
    validator = Draft202012Validator(schema)
    return [v for v in SAMPLES if not validator.is_valid(v)]


class Poster:
    """POSTs raw bodies and records every answer that is not a 4xx in the error shape, or that wrote rows."""

    def __init__(self, client: APIClient, path: str) -> None:
        self.client, self.path = client, path
        self.client.raise_request_exception = False  # a 500 must come back as an answer, not an exception
        self.failures: list[str] = []

    def post(self, label: str, body: bytes | str, content_type: str = "application/json") -> None:
        with transaction.atomic():  # a savepoint: a request that broke the transaction cannot spoil the next
            before = counts()
            response = self.client.post(self.path, data=body, content_type=content_type)
            problem = self._problem(response)
            try:
                after = counts()
            except DatabaseError as exc:
                self.failures.append(f"{label}: {problem or response.status_code}; left a broken transaction: {exc}")
                return
        if after != before:
            changed = {k: (before[k], after[k]) for k in after if after[k] != before[k]}
            problem = f"{problem}; wrote rows {changed}" if problem else f"{response.status_code}, wrote rows {changed}"
        if problem:
            self.failures.append(f"{label}: {problem}")

    def post_json(self, label: str, payload: Any) -> None:
        self.post(label, json.dumps(payload))

    @staticmethod
    def _problem(response) -> str | None:  # noqa: ANN001 - Django test response
        status = response.status_code
        kind = response.get("Content-Type", "")
        text = response.content[:160].decode("utf-8", "replace")
        if not 400 <= status < 500:
            return f"{status} {text!r}"
        if not kind.startswith("application/json"):
            return f"{status} with Content-Type {kind!r}: {text!r}"
        try:
            error = response.json()["error"]
            assert isinstance(error["type"], str) and isinstance(error["message"], str)
            assert isinstance(error["details"], dict)
        except (ValueError, KeyError, TypeError, AssertionError):
            return f"{status} not in the error shape: {text!r}"
        return None

    def report(self) -> str:
        return f"{self.path}: {len(self.failures)} junk bodies not refused cleanly:\n  " + "\n  ".join(self.failures)


def post_raw_junk(poster: Poster) -> None:
    for label, body, content_type in RAW_JUNK:
        poster.post(label, body, content_type)


def post_wrong_types(poster: Poster, base: dict[str, Any], properties: dict[str, dict[str, Any]]) -> None:
    """For each property: the base body with that property set to each value its schema refuses."""
    for name, schema in properties.items():
        for value in wrong_values(schema):
            poster.post_json(f"{name}={value!r:.40}", {**base, name: value})
        for text in JUNK_TEXT:  # strings the schema takes but no name, id or version holds
            if Draft202012Validator(schema).is_valid(text):
                poster.post_json(f"{name}={text!r}", {**base, name: text})
        items = schema.get("items")
        if isinstance(items, dict):  # lists of objects (ports, volumes): wrong items, and wrong item fields
            for value in wrong_values(items):
                poster.post_json(f"{name}=[{value!r:.40}]", {**base, name: [value]})
            for sub, sub_schema in (items.get("properties") or {}).items():
                for value in wrong_values(sub_schema):
                    poster.post_json(f"{name}[0].{sub}={value!r:.40}", {**base, name: [{sub: value}]})


@pytest.fixture
def world(api, pending_host) -> dict[str, Any]:
    """Real ids for every kind of object an action names (a pending host: docker actions refuse it, 409)."""
    f = pending_host
    grant = api.ok("system_sdwan_create_access_grant", {"network_id": f["network"]["id"], "device_name_hint": "a"})
    return {
        **f,
        "ids": {
            "template_id": f["template"]["id"],
            "network_id": f["network"]["id"],
            "node_instance_id": f["instance"]["id"],
            "id": f["instance"]["id"],
            "module_id": str(f["docker_module"].id),
            "host_id": f["host_id"],
            "peer_id": f["peer"]["id"],
            "grant_id": grant["grant"]["id"],
            "token_id": str(HubTokenFactory().id),
        },
    }


@pytest.mark.parametrize("name", ACTIONS)
def test_action_refuses_junk_bodies(name: str, api, world) -> None:  # noqa: ANN001 - fixtures
    action_ = get_action(name)
    poster = Poster(api.client, f"/api/v1/actions/{name}")
    post_raw_junk(poster)
    properties = action_.input_schema.get("properties") or {}
    base = {k: world["ids"].get(k, v) for k, v in action_.example_input().items()}
    post_wrong_types(poster, base, properties)
    poster.post_json("unknown property", {**base, "no_such_property": 1})
    assert not poster.failures, poster.report()


def agent_poster(world: dict[str, Any], path: str) -> Poster:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world['agent_token']}")
    return Poster(client, path)


# the heartbeat validates by hand (apps.nodes.agent_views.heartbeat_input); null or "" mean "not sent"
HEARTBEAT_PROPERTIES = {
    "agent_version": {"type": "string", "minLength": 1, "maxLength": 40},
    "wireguard_public_key": {
        "anyOf": [{"type": "null"}, {"const": ""}, {"pattern": "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$"}],
        "type": ["string", "null"],
    },
    "runtimes": {"type": ["object", "null"]},
}


def test_heartbeat_refuses_junk_bodies(world) -> None:  # noqa: ANN001 - fixtures
    poster = agent_poster(world, "/api/v1/agent/heartbeat")
    post_raw_junk(poster)
    base = {"agent_version": "1.0.0", "runtimes": {"docker": {"phase": "installing"}}}
    post_wrong_types(poster, base, HEARTBEAT_PROPERTIES)
    runtime_report = {"phase": {"enum": ["installing", None]}, "version": {"type": ["string", "null"]}}
    for field, schema in runtime_report.items():
        for value in wrong_values(schema):
            poster.post_json(f"runtimes.docker.{field}={value!r:.40}", {**base, "runtimes": {"docker": {field: value}}})
    for value in wrong_values({"type": ["object", "null"]}):
        poster.post_json(f"runtimes.docker={value!r:.40}", {**base, "runtimes": {"docker": value}})
    assert not poster.failures, poster.report()


def test_handshake_refuses_junk_bodies(world) -> None:  # noqa: ANN001 - fixtures
    poster = agent_poster(world, "/api/v1/runtime/handshake")
    post_raw_junk(poster)
    text = {"type": "string", "minLength": 1}
    # each field is sent with the phase that reads it, so a value that slipped through would be used
    by_phase = {
        "installing": {"runtime": {"enum": ["docker"]}, "phase": {"enum": ["installing"]}},
        "wants_cert": {"csr_pem": text},
        "ready": {"version": text},
        "failed": {"error": text},
        "decommissioned": {"host_id": text},
    }
    valid = {"csr_pem": make_csr(), "version": "20.10.24", "error": "boom", "host_id": world["host_id"]}
    for phase, properties in by_phase.items():
        base = {"runtime": "docker", "phase": phase}
        base.update({k: v for k, v in valid.items() if k in properties})
        post_wrong_types(poster, base, properties)
    assert not poster.failures, poster.report()


# the hub sync validates by hand too (apps.sdwan.hub_views.hub_sync_input)
HUB_PROPERTIES = {
    "hub_version": {"type": "string", "minLength": 1, "maxLength": 40},
    "desired_version": {"type": ["string", "null"], "maxLength": 128},
    "wait_s": {"type": ["integer", "null"], "minimum": 0, "maximum": 55},
    "status": {"type": ["object", "null"]},
}
HUB_NETWORK_PROPERTIES = {
    "network_id": {"type": "string", "format": "uuid", "pattern": "^[0-9a-f-]{36}$"},
    "public_key": {"type": "string", "pattern": "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$"},
    "peers": {"type": ["array", "null"]},
}
HUB_PEER_PROPERTIES = {
    "public_key": {"type": "string", "pattern": "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$"},
    "latest_handshake": {"type": "integer", "minimum": 0, "maximum": 253402300799},
    "rx_bytes": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    "tx_bytes": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
}


def test_hub_sync_refuses_junk_bodies(world) -> None:  # noqa: ANN001 - fixtures
    from apps.sdwan import wireguard

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {HubTokenFactory().hub_token}")
    poster = Poster(client, "/api/v1/hub/sync")
    post_raw_junk(poster)
    # a new hub key: a body that slipped through would re-key the network (and show as a changed row count
    # of events); the peer named is the world's own
    peer = {"public_key": wireguard.generate_keypair().public_key, "latest_handshake": 1, "rx_bytes": 1, "tx_bytes": 1}
    network = {"network_id": world["network"]["id"], "public_key": wireguard.generate_keypair().public_key}
    base = {"hub_version": "0.4.0", "status": {"networks": [{**network, "peers": [peer]}]}}
    post_wrong_types(poster, base, HUB_PROPERTIES)
    for name, schema in HUB_NETWORK_PROPERTIES.items():
        for value in [*wrong_values(schema), *JUNK_TEXT]:
            body = {**base, "status": {"networks": [{**network, "peers": [peer], name: value}]}}
            poster.post_json(f"status.networks[0].{name}={value!r:.40}", body)
    for name, schema in HUB_PEER_PROPERTIES.items():
        for value in [*wrong_values(schema), *JUNK_TEXT]:
            body = {**base, "status": {"networks": [{**network, "peers": [{**peer, name: value}]}]}}
            poster.post_json(f"status.networks[0].peers[0].{name}={value!r:.40}", body)
    assert not poster.failures, poster.report()
