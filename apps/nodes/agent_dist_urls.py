"""Routes under /agent/ (apps.nodes.agent_dist_views)."""

from django.urls import path

from apps.nodes import agent_dist_views as views

app_name = "agent_dist"

urlpatterns = [
    path("latest", views.latest, name="latest"),
    path("SHA256SUMS", views.sha256sums, name="sha256sums"),
    path("install.sh", views.install_script, name="install-script"),
    path("powernode-agent.service", views.unit, name="unit"),
    path("platform-ca.pem", views.platform_ca, name="platform-ca"),
    path("<str:filename>", views.wheel, name="wheel"),
]
