"""/api/v1/: actions, read-only resources, schema and docs."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from apps.system import resources, views

router = DefaultRouter()
router.register("instances", resources.NodeInstanceViewSet, basename="instance")
router.register("templates", resources.NodeTemplateViewSet, basename="template")
router.register("modules", resources.ModuleViewSet, basename="module")
router.register("sdwan/networks", resources.SdwanNetworkViewSet, basename="sdwan-network")
router.register("sdwan/peers", resources.SdwanPeerViewSet, basename="sdwan-peer")
router.register("events", resources.EventViewSet, basename="event")

urlpatterns = [
    path("actions/", views.ActionListView.as_view(), name="action-list"),
    path("actions/<str:name>", views.ActionRunView.as_view(), name="action-run"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include(router.urls)),
]
