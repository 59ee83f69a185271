"""/api/v1/ of the operator surface: the actions, the OpenAPI schema and its docs.

The apps' resources (instances, hosts, certificates, …) share one router built in ``powernode/urls.py``.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.system import views

urlpatterns = [
    path("actions/", views.ActionListView.as_view(), name="action-list"),
    path("actions/<str:name>", views.action_endpoint, name="action-run"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]
