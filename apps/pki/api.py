"""REST resource of issued certificates: serializer, filterset and read-only viewset (``/api/v1/pki/certificates/``).

The record of what the CA issued: serials, names, validity, revocation and the public certificate.
There is no key material to leak: private keys never reach this table (host keys stay on the host,
the platform's client key is encrypted on its Docker host row, exported operator keys are shown once).
"""

from __future__ import annotations

import django_filters as filters
from rest_framework import serializers, viewsets

from apps.pki.models import IssuedCertificate
from powernode.permissions import DockerView


class IssuedCertificateSerializer(serializers.ModelSerializer):
    operator = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    revoked = serializers.BooleanField(source="is_revoked", read_only=True)

    class Meta:
        model = IssuedCertificate
        fields = [
            "id",
            "serial",
            "kind",
            "common_name",
            "sans",
            "not_before",
            "not_after",
            "host_id",
            "operator",
            "adapter",
            "revoked",
            "revoked_at",
            "revocation_reason",
            "created_at",
            "cert_pem",
        ]


class IssuedCertificateFilter(filters.FilterSet):
    revoked = filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = IssuedCertificate
        fields = ["kind", "host_id", "serial", "revoked"]


class IssuedCertificateViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = IssuedCertificate.objects.select_related("operator").order_by("-created_at", "-id")
    serializer_class = IssuedCertificateSerializer
    filterset_class = IssuedCertificateFilter
    permission_classes = [DockerView]
