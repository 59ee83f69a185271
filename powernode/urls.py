"""Top-level routes: the admin and the versioned API."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from apps.docker_hosts.views import RuntimeHandshakeView
from apps.nodes.agent_views import HeartbeatView

handler404 = "apps.system.errors.json_404"
handler500 = "apps.system.errors.json_500"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/pki/", include("apps.pki.urls")),
    path("api/v1/agent/heartbeat", HeartbeatView.as_view(), name="agent-heartbeat"),
    path("api/v1/runtime/handshake", RuntimeHandshakeView.as_view(), name="runtime-handshake"),
    path("api/v1/", include("apps.system.urls")),
]
