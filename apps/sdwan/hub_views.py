"""``POST /api/v1/hub/sync``: a hub (``powernode-agent hub``, Bearer ``pnh_``) reports and gets its desired state.

The body is validated whole, by hand, before anything is written (a status of 65,536 peers through DRF
serializers would cost far more than the sync itself): a malformed body is a 400 naming the field
(``details.fields``) and changes nothing. See docs/AGENT_PROTOCOL.md ("The hub").
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.sdwan import selectors, services
from apps.sdwan.hub_auth import HubPrincipal, HubTokenAuthentication, IsHub
from powernode import watch
from powernode.async_views import check_content_length, error_response, method_not_allowed
from powernode.db import db_call
from powernode.errors import ApplicationError, PayloadTooLarge, ValidationError
from powernode.handlers import sessionless
from powernode.text import bad_text_path

MAX_HUB_BODY_BYTES = 4 * 1024 * 1024
MAX_NETWORKS = 4096
MAX_PEERS = 65536
MAX_WAIT_S = 55
MAX_COUNTER = 2**63 - 1  # a PostgreSQL bigint
MAX_HANDSHAKE = 253402300799  # 9999-12-31T23:59:59Z
MAX_FIELD_ERRORS = 20
# 32 bytes in canonical base64: 42 free characters, one whose low 4 bits are zero, then "="
_WG_KEY = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")


class _Problems:
    """The field errors of one body, at most MAX_FIELD_ERRORS of them (a bad 65,536-peer status must not
    make a 65,536-entry answer)."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def add(self, field: str, problem: str) -> None:
        if len(self.fields) < MAX_FIELD_ERRORS:
            self.fields[field] = problem

    @property
    def full(self) -> bool:
        return len(self.fields) >= MAX_FIELD_ERRORS


def _text(data: dict[str, Any], key: str, problems: _Problems, *, max_length: int, required: bool) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            problems.add(key, "this field is required (a non-empty string)")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        problems.add(key, "must be a non-empty string" if required else "must be a string")
    elif len(value) > max_length:
        problems.add(key, f"must be at most {max_length} characters")
    elif bad_text_path(value):
        problems.add(key, "must not contain NUL or unpaired surrogate characters")
    else:
        return value
    return None


def _integer(value: Any, field: str, problems: _Problems, *, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(field, "must be an integer")
    elif not 0 <= value <= maximum:
        problems.add(field, f"must be between 0 and {maximum}")
    else:
        return value
    return 0


def _key(value: Any, field: str, problems: _Problems) -> str:
    if not isinstance(value, str) or not _WG_KEY.fullmatch(value):
        problems.add(field, "must be a base64 WireGuard (X25519) public key")
        return ""
    return value


def _peers(value: Any, where: str, problems: _Problems, budget: list[int]) -> list[services.ReportedPeer]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(where, "must be an array")
        return []
    budget[0] -= len(value)
    if budget[0] < 0:
        problems.add(where, f"the status holds more than {MAX_PEERS} peers in all")
        return []
    peers = []
    for index, item in enumerate(value):
        if problems.full:
            break
        field = f"{where}[{index}]"
        if not isinstance(item, dict):
            problems.add(field, "must be an object")
            continue
        peers.append(
            services.ReportedPeer(
                public_key=_key(item.get("public_key"), f"{field}.public_key", problems),
                latest_handshake=_integer(
                    item.get("latest_handshake"), f"{field}.latest_handshake", problems, maximum=MAX_HANDSHAKE
                ),
                rx_bytes=_integer(item.get("rx_bytes"), f"{field}.rx_bytes", problems, maximum=MAX_COUNTER),
                tx_bytes=_integer(item.get("tx_bytes"), f"{field}.tx_bytes", problems, maximum=MAX_COUNTER),
            )
        )
    return peers


def _networks(value: Any, problems: _Problems) -> list[services.ReportedNetwork]:
    where = "status.networks"
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(where, "must be an array")
        return []
    if len(value) > MAX_NETWORKS:
        problems.add(where, f"must hold at most {MAX_NETWORKS} networks")
        return []
    total = sum(len(n["peers"]) for n in value if isinstance(n, dict) and isinstance(n.get("peers"), list))
    if total > MAX_PEERS:
        problems.add(where, f"the status holds {total} peers; at most {MAX_PEERS} in all")
        return []
    networks, seen, budget = [], set(), [MAX_PEERS]
    for index, item in enumerate(value):
        if problems.full:
            break
        field = f"{where}[{index}]"
        if not isinstance(item, dict):
            problems.add(field, "must be an object")
            continue
        network_id = item.get("network_id")
        try:
            network_id = str(uuid.UUID(network_id)) if isinstance(network_id, str) else None
        except ValueError:
            network_id = None
        if network_id is None:
            problems.add(f"{field}.network_id", "must be a network id (a UUID)")
        elif network_id in seen:
            problems.add(f"{field}.network_id", "is reported twice")
        seen.add(network_id)
        networks.append(
            services.ReportedNetwork(
                network_id=network_id or "",
                public_key=_key(item.get("public_key"), f"{field}.public_key", problems),
                peers=_peers(item.get("peers"), f"{field}.peers", problems, budget),
            )
        )
    return networks


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_json_body(request: Request) -> Any:
    """The body parsed as JSON, read here rather than by DRF: the platform's request limit
    (``POWERNODE_MAX_BODY_BYTES``, 256 KiB by default) is far below a hub's status, whose own limit is 4 MiB."""
    raw = request._request.read(MAX_HUB_BODY_BYTES + 1)  # noqa: SLF001 - the HttpRequest's own stream
    if len(raw) > MAX_HUB_BODY_BYTES:
        raise PayloadTooLarge(
            f"The body is over {MAX_HUB_BODY_BYTES} bytes, the limit of hub syncs.",
            details={"limit": MAX_HUB_BODY_BYTES},
        )
    if not raw.strip():
        return {}
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        problem = "JSON nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise ValidationError(f"The body is not UTF-8 JSON: {problem}", details={"fields": {"(body)": "JSON"}})


def hub_sync_input(data: Any) -> dict[str, Any]:
    """The sync body, checked whole: ``{hub_version, applied_version, networks}`` or a ValidationError (400).
    Keys the contract does not name are ignored (a newer hub may send more)."""
    if not isinstance(data, dict):
        raise ValidationError(
            f"The body must be a JSON object, got {type(data).__name__}.", details={"fields": {"(body)": "object"}}
        )
    problems = _Problems()
    hub_version = _text(data, "hub_version", problems, max_length=40, required=True)
    desired_version = _text(data, "desired_version", problems, max_length=128, required=False)
    wait_s = 0
    if data.get("wait_s") is not None:
        wait_s = _integer(data["wait_s"], "wait_s", problems, maximum=MAX_WAIT_S)
    status = data.get("status")
    applied_version, networks = None, []
    if status is not None and not isinstance(status, dict):
        problems.add("status", "must be an object")
    elif status is not None:
        if status.get("applied_version") is not None:
            applied_version = _text(status, "applied_version", problems, max_length=128, required=False)
            if "applied_version" in problems.fields:
                problems.fields["status.applied_version"] = problems.fields.pop("applied_version")
        networks = _networks(status.get("networks"), problems)
    if problems.fields:
        name, problem = next(iter(problems.fields.items()))
        raise ValidationError(f"Invalid input: {name}: {problem}", details={"fields": problems.fields})
    return {
        "hub_version": hub_version,
        "applied_version": applied_version or None,
        "networks": networks,
        "desired_version": desired_version,
        "wait_s": wait_s,
    }


_EXAMPLE_ANSWER = {
    "desired_version": "9f2c…",
    "poll_interval_s": 2,
    "networks": [
        {
            "network_id": "0193a1b2-0000-7000-8000-000000000001",
            "name": "net-a",
            "prefix": "fd00:abcd:1::/64",
            "hub_address": "fd00:abcd:1::1",
            "listen_port": 51820,
            "public_key": "",
            "peers": [{"public_key": "<wg key>", "allowed_ips": ["fd00:abcd:1::2/128"]}],
        }
    ],
}


class HubSyncView(APIView):
    """Hub token only, JSON object bodies of at most 4 MiB."""

    authentication_classes = [HubTokenAuthentication]
    permission_classes = [IsHub]
    renderer_classes = [JSONRenderer]
    throttle_classes: list = []

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authenticates first: strangers learn nothing about limits
        self.initial_size_check(request.META)

    @staticmethod
    def initial_size_check(meta: dict[str, Any]) -> None:
        check_content_length(meta, limit=MAX_HUB_BODY_BYTES, what="hub syncs")

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
        operation_id="hub_sync",
        tags=["hub"],
        description=(
            "A hub (powernode-agent hub, Authorization: Bearer pnh_...) reports its per-network WireGuard keys "
            "and its peers' handshakes and counters, and gets every network's desired hub state "
            "(docs/AGENT_PROTOCOL.md, \"The hub\"). Body at most 4 MiB."
        ),
        examples=[
            OpenApiExample(
                "sync",
                request_only=True,
                value={
                    "hub_version": "0.4.0",
                    "desired_version": "9f2c…",
                    "status": {
                        "applied_version": "9f2c…",
                        "networks": [
                            {
                                "network_id": "0193a1b2-0000-7000-8000-000000000001",
                                "public_key": "<hub key>",
                                "peers": [
                                    {
                                        "public_key": "<wg key>",
                                        "latest_handshake": 1733140000,
                                        "rx_bytes": 123,
                                        "tx_bytes": 456,
                                    }
                                ],
                            }
                        ],
                    },
                },
            ),
            OpenApiExample("answer", response_only=True, value=_EXAMPLE_ANSWER),
        ],
    )
    def post(self, request: Request) -> Response:
        """Called directly it answers at once; the route serves :func:`hub_sync`, which may hold."""
        params = hub_sync_input(read_json_body(request))
        principal: HubPrincipal = request.user  # type: ignore[assignment]
        services.hub_sync(token=principal.token, **sync_params(params))
        return Response(selectors.hub_desired_state())


def sync_params(params: dict[str, Any]) -> dict[str, Any]:
    """The arguments of ``services.hub_sync`` among the validated input (the watch fields are the view's)."""
    return {k: params[k] for k in ("hub_version", "applied_version", "networks")}


# -- the served endpoint: an async view that holds watch requests ---------------------------------------------
_ALLOW = "POST, OPTIONS"


def _sync_step(
    request: HttpRequest, loop: asyncio.AbstractEventLoop
) -> tuple[dict[str, Any], dict[str, Any], watch.Waiter | None]:
    """Everything before the wait, in one trip to a worker thread: authenticate, check, subscribe (a watch
    request), record the hub's status, read the desired state. Same order as the DRF view: 401, 405, 413, 400."""
    drf_request = Request(request, authenticators=[HubTokenAuthentication()])
    principal = HubTokenAuthentication().authenticate(drf_request)[0]
    if request.method == "OPTIONS":
        options = {"name": "Hub Sync", "description": "", "renders": ["application/json"]}
        return {**options, "parses": ["application/json"]}, {}, None
    if request.method != "POST":
        raise method_not_allowed(request.method or "")
    HubSyncView().initial_size_check(request.META)
    params = hub_sync_input(read_json_body(drf_request))
    waiter = None
    if params["wait_s"] and params["desired_version"] is not None:
        # subscribed before the state is read: a change committed in between counts
        waiter = watch.subscribe({watch.HUB}, loop=loop)
    try:
        services.hub_sync(token=principal.token, **sync_params(params))
        answer = selectors.hub_desired_state()
    except BaseException:
        if waiter is not None:
            waiter.close()
        raise
    return answer, params, waiter


@sessionless()  # a hub token, no session ever
@csrf_exempt
async def hub_sync(request: HttpRequest) -> HttpResponse:
    """``POST /api/v1/hub/sync``: answer at once, or hold a watch request until the hub's desired state changes
    or ``wait_s`` passes (DESIGN §4b, the heartbeat's watch semantics)."""
    # This process's LISTEN connection (PostgreSQL; opened once). Not conditional on the body: reading
    # request.body here would run into the platform's request limit, far below a hub's 4 MiB.
    await watch.ready()
    try:
        answer, params, waiter = await db_call(_sync_step)(request, asyncio.get_running_loop())
    except ApplicationError as err:
        response = error_response(err)
    else:
        if waiter is not None:
            answer = await watch.hold(
                waiter,
                answer=answer,
                known_version=params["desired_version"],
                wait_s=params["wait_s"],
                recompute=lambda: db_call(selectors.hub_desired_state)(),
            )
        response = JsonResponse(answer)
    response["Allow"] = _ALLOW
    return response


hub_sync.cls = HubSyncView  # drf-spectacular documents a route by its callback's APIView class
hub_sync.initkwargs = {}
