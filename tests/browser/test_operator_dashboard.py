"""The operator's journey in a real browser: assign docker-engine, watch a handshake go live, decommission.

Chromium (Debian's) driven by Playwright against the live server; the agent talks to the same server
over real HTTP in a background thread. Each page visited is saved as a screenshot.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from apps.docker_hosts.models import DockerHost
from apps.events.models import Event
from apps.modules.models import ModuleAssignment
from apps.nodes.models import NodeInstance
from tests.agents import AgentClient
from tests.browser.conftest import BackgroundAgent, login
from tests.csr import make_csr

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture says so (a failure under CI=true, where nothing may skip)
    expect = None


@pytest.fixture
def operator(django_user_model):  # noqa: ANN201
    return django_user_model.objects.create_superuser("ops-root", password="pw-ops-root")


@pytest.fixture
def peerless(api, fleet) -> dict:
    """A second template whose only instance has no SDWAN peer (and an agent that went silent)."""
    template = api.ok("system_create_node_template", {"name": "edge-nodes"})["template"]
    made = api.ok("system_provision_instance", {"template_id": template["id"], "name": "edge-7"})
    NodeInstance.objects.filter(pk=made["instance"]["id"]).update(
        last_heartbeat_at=timezone.now() - dt.timedelta(minutes=42)
    )
    return {"template": template, "instance": made["instance"]}


def template_page(page, base: str, template_id: str) -> None:
    page.goto(f"{base}/admin/nodes/nodetemplate/{template_id}/change/")
    expect(page.locator("#pn-modules")).to_be_visible()


def test_assign_watch_handshake_and_decommission(page, shoot, live_server, operator, fleet, peerless, api):
    base = live_server.url
    login(page, base, "ops-root", "pw-ops-root")
    shoot("01-dashboard-before")

    # -- assign docker-engine on the template whose instance is on net-a ------------------------------
    template_page(page, base, fleet["template"]["id"])
    shoot("02-template-before-assign")
    page.click("tr.pn-assignable[data-module='docker-engine'] input[data-action=assign]")
    expect(page.locator("ul.messagelist li.success")).to_contain_text("docker-engine")
    expect(page.locator("tr.pn-assigned[data-module='docker-engine']")).to_be_visible()
    # k3s-server is published and not blessed: no override offered
    expect(page.locator("tr.pn-assignable[data-module='k3s-server'] input[name=override]")).to_have_count(0)
    shoot("03-template-assigned")
    assert ModuleAssignment.objects.filter(
        node_template_id=fleet["template"]["id"], module__name="docker-engine"
    ).exists()

    # -- the peerless template refuses, naming the instance, writing nothing ----------------------------
    events_before = Event.objects.count()
    template_page(page, base, peerless["template"]["id"])
    page.click("tr.pn-assignable[data-module='docker-engine'] input[data-action=assign]")
    error = page.locator("ul.messagelist li.error")
    expect(error).to_contain_text("MissingSdwanPeerError")
    expect(error).to_contain_text("edge-7")
    shoot("04-template-missing-sdwan-peer")
    assert not ModuleAssignment.objects.filter(node_template_id=peerless["template"]["id"]).exists()
    assert Event.objects.count() == events_before

    # -- an agent plays the handshake over HTTP; the host page follows without a manual reload ---------
    agent = BackgroundAgent(
        AgentClient(fleet["agent_token"], base_url=base),
        [
            lambda a: (a.heartbeat_ok(), a.ok("installing"), a.ok("wants_cert", csr_pem=make_csr())),
            lambda a: (a.ok("wants_config"), a.ok("ready", version="20.10.24")),
            lambda a: a.heartbeat_ok(),
            lambda a: a.ok("decommissioned", host_id=a.host_id),
        ],
    )
    agent.start()
    host_id = agent.step(0)[2]["host_id"]
    agent.agent.host_id = host_id

    page.goto(f"{base}/admin/docker_hosts/dockerhost/")
    row = page.locator("#result_list tbody tr", has_text="node-1")
    expect(row.locator(".pn-badge")).to_have_text("pending")
    shoot("05-hosts-list-pending")
    row.locator("th.field-short_id a").click()
    expect(page.locator("#pn-status")).to_have_text("pending")
    expect(page.locator("li[data-phase=config_sent]")).to_have_attribute("data-state", "current")
    shoot("06-host-pending")

    page.evaluate("window.pnNotReloaded = true")
    agent.release(1)
    expect(page.locator("#pn-status")).to_have_text("connected", timeout=60_000)
    agent.finish(1)
    # the page reloaded itself: the marker set on the pending page is gone, and nobody called reload
    assert page.evaluate("window.pnNotReloaded === undefined")
    expect(page.locator("li[data-phase=connected]")).to_have_attribute("data-state", "done")
    expect(page.locator("#pn-host-head")).to_contain_text("20.10.24")
    # no daemon listens on that overlay address here: the page says so instead of failing
    expect(page.locator("#pn-daemon-error")).to_contain_text("DockerDaemonError")
    shoot("07-host-connected")
    assert DockerHost.objects.get(pk=host_id).status == DockerHost.Status.CONNECTED

    # -- decommission with confirmation -----------------------------------------------------------------
    page.click("#pn-decommission")
    expect(page.locator(".pn-consequences")).to_contain_text("stop dockerd")
    expect(page.locator(".pn-consequences")).to_contain_text("revoked")
    shoot("08-decommission-confirmation")
    assert DockerHost.objects.get(pk=host_id).status == DockerHost.Status.CONNECTED  # nothing yet
    page.click("#pn-confirm-decommission")
    expect(page.locator("#pn-status")).to_have_text("decommissioning")
    expect(page.locator("ul.messagelist li.success")).to_contain_text("Decommission requested")
    shoot("09-host-decommissioning")

    # the agent's next heartbeat carries the order; its confirmation ends the host, live on the page
    orders = agent.step(2)["runtime_orders"]
    assert orders == [{"runtime": "docker", "action": "decommission", "host_id": host_id}]
    page.evaluate("window.pnNotReloaded = true")
    agent.release(3)
    expect(page.locator("#pn-status")).to_have_text("decommissioned", timeout=60_000)
    agent.finish(3)
    assert page.evaluate("window.pnNotReloaded === undefined")
    expect(page.locator("li[data-phase=decommissioned]")).to_have_attribute("data-state", "done")
    shoot("10-host-decommissioned")

    # -- the instance page, the event log and the dashboard tell the same story ------------------------
    page.goto(f"{base}/admin/nodes/nodeinstance/{fleet['instance']['id']}/change/")
    expect(page.locator("#pn-peers")).to_contain_text("fd00:abcd:1::")
    expect(page.locator("#pn-host-link")).to_contain_text(host_id)
    expect(page.locator("#pn-heartbeat .pn-age")).to_have_class(re.compile("pn-age-fresh"))
    shoot("11-instance")

    page.goto(f"{base}/admin/events/event/?kind_prefix=system.docker.handshake&instance=node-1")
    kinds = page.locator("#result_list tbody tr td.field-kind_badge").all_inner_texts()
    assert kinds[:3] == [
        "system.docker.handshake.ready",
        "system.docker.handshake.wants_config",
        "system.docker.handshake.cert_signed",
    ], kinds
    assert all(k.startswith("system.docker.handshake") for k in kinds)
    shoot("12-events-filtered")

    page.goto(f"{base}/admin/")
    expect(page.locator(".pn-card-decommissioned .pn-card-n")).to_have_text("1")
    expect(page.locator("#pn-instances")).to_contain_text("edge-7")
    expect(page.locator("#pn-instances tr.pn-row-stale")).to_contain_text("edge-7")
    expect(page.locator("#pn-events")).to_contain_text("system.docker.decommissioned")
    shoot("13-dashboard-after")


def test_a_failed_handshake_reaches_the_dashboard_and_host_page(
    page, shoot, live_server, operator, fleet, api
):
    api.ok(
        "system_assign_module_to_template",
        {"template_id": fleet["template"]["id"], "module_id": str(fleet["docker_module"].id)},
    )
    agent = AgentClient(fleet["agent_token"], base_url=live_server.url)
    host_id = agent.ok("wants_cert", csr_pem=make_csr())["host_id"]
    agent.ok("wants_config")
    agent.ok("failed", error="dockerd: open /etc/docker/powernode/key.pem: permission denied")

    login(page, live_server.url, "ops-root", "pw-ops-root")
    expect(page.locator(".pn-card-failed .pn-card-n")).to_have_text("1")
    expect(page.locator("#pn-failed")).to_contain_text("permission denied")
    shoot("14-dashboard-failed-handshake")
    page.click("#pn-failed a")
    expect(page.locator("#pn-status")).to_have_text("failed")
    expect(page.locator("#pn-last-error")).to_contain_text("key.pem: permission denied")
    expect(page.locator("#pn-hint")).to_contain_text("The agent failed after receiving the daemon config")
    assert host_id in page.url
    shoot("15-host-failed")


def test_without_docker_provision_no_controls_and_crafted_posts_are_refused(
    page, shoot, live_server, fleet, api, django_user_model
):
    from django.contrib.auth.models import Permission

    from tests.admin.conftest import VIEW_MODELS

    api.ok(
        "system_assign_module_to_template",
        {"template_id": fleet["template"]["id"], "module_id": str(fleet["docker_module"].id)},
    )
    agent = AgentClient(fleet["agent_token"], base_url=live_server.url)
    host_id = agent.ok("wants_cert", csr_pem=make_csr())["host_id"]
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer", is_staff=True)
    for app_label, codename in VIEW_MODELS:
        viewer.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    for codename in ["instance_view", "docker_view", "events_view", "sdwan_view"]:
        viewer.user_permissions.add(
            Permission.objects.get(content_type__app_label="system", codename=codename)
        )

    base = live_server.url
    login(page, base, "viewer", "pw-viewer")
    template_page(page, base, fleet["template"]["id"])
    expect(page.locator("input[data-action=assign]")).to_have_count(0)
    expect(page.locator("input[data-action=unassign]")).to_have_count(0)
    expect(page.locator("#pn-modules")).to_contain_text("needs the permission system.docker_provision")
    shoot("16-template-as-viewer")

    page.goto(f"{base}/admin/docker_hosts/dockerhost/{host_id}/change/")
    expect(page.locator("#pn-status")).to_have_text("pending")
    expect(page.locator("#pn-decommission")).to_have_count(0)
    shoot("17-host-as-viewer")
    page.goto(f"{base}/admin/docker_hosts/dockerhost/")
    expect(page.locator("select[name=action] option[value=decommission]")).to_have_count(0)

    # crafted POSTs with a valid session and CSRF token: refused by the permission, nothing changes
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    headers = {"X-CSRFToken": csrf, "Referer": base + "/admin/"}
    peerless_module = str(fleet["docker_module"].id)
    unassign = page.request.post(
        f"{base}/admin/nodes/nodetemplate/{fleet['template']['id']}/modules/unassign/",
        form={"module_id": peerless_module},
        headers=headers,
    )
    decommission = page.request.post(
        f"{base}/admin/docker_hosts/dockerhost/{host_id}/decommission/", form={"post": "yes"}, headers=headers
    )
    action = page.request.post(
        f"{base}/admin/docker_hosts/dockerhost/",
        form={"action": "decommission", "_selected_action": host_id, "post": "yes"},
        headers=headers,
    )
    assert unassign.status == 403
    assert decommission.status == 403
    assert action.status in (200, 302)  # the changelist ignores an action the user may not run
    assert ModuleAssignment.objects.filter(node_template_id=fleet["template"]["id"]).count() == 1
    assert DockerHost.objects.get(pk=host_id).status == DockerHost.Status.PENDING
    assert not Event.objects.filter(
        kind__in=["system.docker.module.unassigned", "system.docker.decommission.requested"]
    ).exists()


def test_a_fleet_at_a_glance(page, shoot, live_server, operator, fleet, api):
    """Five instances in five states: the dashboard cards and the host list say which is which."""
    template_id, network_id = fleet["template"]["id"], fleet["network"]["id"]
    api.ok(
        "system_assign_module_to_template",
        {"template_id": template_id, "module_id": str(fleet["docker_module"].id)},
    )
    agents = {"node-1": AgentClient(fleet["agent_token"], base_url=live_server.url)}
    for name in ("node-2", "node-3", "node-4", "node-5"):
        made = api.ok("system_provision_instance", {"template_id": template_id, "name": name})
        api.ok(
            "system_sdwan_attach_peer", {"network_id": network_id, "node_instance_id": made["instance"]["id"]}
        )
        agents[name] = AgentClient(made["agent_token"], base_url=live_server.url)
    for agent in agents.values():
        agent.heartbeat_ok()
        agent.ok("installing")
        agent.host_id = agent.ok("wants_cert", csr_pem=make_csr())["host_id"]
    for name in ("node-1", "node-2", "node-3"):
        agents[name].ok("wants_config")
    for name in ("node-1", "node-2"):
        agents[name].ok("ready", version="20.10.24")
    agents["node-3"].ok(
        "failed", error="dockerd: listen tcp [fd00:abcd:1::4]:2376: bind: address not available"
    )
    api.ok("system_decommission_docker_runtime", {"host_id": agents["node-2"].host_id})
    NodeInstance.objects.filter(name="node-5").update(
        last_heartbeat_at=timezone.now() - dt.timedelta(hours=3)
    )

    login(page, live_server.url, "ops-root", "pw-ops-root")
    counts = {
        status: page.locator(f".pn-card-{status} .pn-card-n").inner_text()
        for status in ("pending", "connected", "decommissioning", "failed")
    }
    assert counts == {"pending": "2", "connected": "1", "decommissioning": "1", "failed": "1"}
    expect(page.locator("#pn-instances tr.pn-row-stale")).to_contain_text("node-5")
    expect(page.locator("#pn-failed")).to_contain_text("address not available")
    shoot("18-dashboard-fleet")

    page.goto(f"{live_server.url}/admin/docker_hosts/dockerhost/")
    badges = page.locator("#result_list td.field-status_badge").all_inner_texts()
    assert sorted(b.strip().lower() for b in badges) == [
        "connected",
        "decommissioning",
        "failed",
        "pending",
        "pending",
    ]
    shoot("19-hosts-list-fleet")

    # node-4 got its certificate long ago and never asked for its config: the page says it is stuck
    DockerHost.objects.filter(pk=agents["node-4"].host_id).update(
        cert_signed_at=timezone.now() - dt.timedelta(minutes=25)
    )
    page.goto(f"{live_server.url}/admin/docker_hosts/dockerhost/{agents['node-4'].host_id}/change/")
    expect(page.locator("#pn-hint")).to_contain_text("Stuck for 25")
    expect(page.locator("#pn-hint")).to_contain_text("journalctl -u powernode-agent.service")
    expect(page.locator("#pn-hint")).to_have_class(re.compile("pn-hint-stuck"))
    shoot("20-host-stuck")
