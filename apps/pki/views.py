"""Public PKI endpoints: the CRL and the CA chain, as PEM, without authentication (they hold no secrets)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from apps.pki import services
from powernode.errors import ApplicationError

PEM_CONTENT_TYPE = "application/x-pem-file"


def _pem_or_error(producer) -> HttpResponse:  # noqa: ANN001 - a zero-argument callable returning PEM
    try:
        pem = producer()
    except ApplicationError as exc:
        return JsonResponse(exc.as_dict(), status=exc.status_code)
    response = HttpResponse(pem, content_type=PEM_CONTENT_TYPE)
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def crl(request: HttpRequest) -> HttpResponse:
    """``GET /api/v1/pki/crl``: the active CA's CRL (PEM). 502 JSON error when the CA does not answer."""
    return _pem_or_error(services.ca_crl_pem)


@require_GET
def ca_chain(request: HttpRequest) -> HttpResponse:
    """``GET /api/v1/pki/ca``: the chain (intermediate then root) that verifies every issued certificate."""
    return _pem_or_error(services.ca_chain_pem)
