"""Top-level routes (the wiring: the one kernel module that names apps): the admin, the versioned API and the
agent's downloads (/agent/).

Every app owns its resources (``apps/<app>/api.py``); the one router of ``/api/v1/`` is built here, so
no app has to import another's viewsets. ``apps.system.urls`` adds the actions, the schema and the docs.
"""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from rest_framework.routers import DefaultRouter

from apps.docker_hosts.api import DockerHostViewSet
from apps.docker_hosts.views import RuntimeHandshakeView
from apps.events.api import EventViewSet
from apps.modules.api import ModuleViewSet
from apps.nodes.agent_views import heartbeat
from apps.nodes.api import NodeInstanceViewSet, NodeTemplateViewSet
from apps.pki.api import IssuedCertificateViewSet
from apps.sdwan.api import SdwanNetworkViewSet, SdwanPeerViewSet
from apps.sdwan.hub_views import hub_sync

handler404 = "apps.system.errors.json_404"
handler500 = "apps.system.errors.json_500"

router = DefaultRouter()
router.register("instances", NodeInstanceViewSet, basename="instance")
router.register("templates", NodeTemplateViewSet, basename="template")
router.register("modules", ModuleViewSet, basename="module")
router.register("sdwan/networks", SdwanNetworkViewSet, basename="sdwan-network")
router.register("sdwan/peers", SdwanPeerViewSet, basename="sdwan-peer")
router.register("events", EventViewSet, basename="event")
router.register("docker/hosts", DockerHostViewSet, basename="docker-host")
# /api/v1/pki/crl and /api/v1/pki/ca (apps.pki.urls) are plain views; certificates/ is this resource
router.register("pki/certificates", IssuedCertificateViewSet, basename="pki-certificate")

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("agent/", include("apps.nodes.agent_dist_urls")),  # the agent's wheel and install script, no auth
    path("api/v1/pki/", include("apps.pki.urls")),
    path("api/v1/agent/heartbeat", heartbeat, name="agent-heartbeat"),
    path("api/v1/runtime/handshake", RuntimeHandshakeView.as_view(), name="runtime-handshake"),
    path("api/v1/hub/sync", hub_sync, name="hub-sync"),
    path("api/v1/", include("apps.system.urls")),
    path("api/v1/", include(router.urls)),
]
