"""Routes under /api/v1/pki/."""

from django.urls import path

from apps.pki import views

app_name = "pki"

urlpatterns = [
    path("crl", views.crl, name="crl"),
    path("ca", views.ca_chain, name="ca-chain"),
]
