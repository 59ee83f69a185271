"""``/agent/…``: the agent's wheel, its sha256, the install script, the systemd unit and the platform's CA.

Served without authentication: none of it is secret (the agent token is, and it never appears here). No view
reads a query string, so nothing a node sends in a URL can carry a token into a server's access log.
"""

from __future__ import annotations

import base64

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.views.decorators.http import require_safe

from apps.nodes import agent_dist
from powernode.errors import NotFound

SHELL_CONTENT_TYPE = "text/x-shellscript; charset=utf-8"


def _not_found(message: str, **details: str) -> JsonResponse:
    error = NotFound(message, details=details)
    return JsonResponse(error.as_dict(), status=error.status_code)


def _no_cache(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-cache"  # a platform upgrade changes what /agent/latest and the script say
    return response


@require_safe
def wheel(request: HttpRequest, filename: str) -> HttpResponse:
    """``GET /agent/powernode_agent-<version>-py3-none-any.whl``: this platform's agent wheel (one version)."""
    built = agent_dist.agent_wheel()
    if filename != built.filename:
        return _not_found(
            f"this platform serves {built.filename} only (GET /agent/latest)", served=built.filename
        )
    response = HttpResponse(built.content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{built.filename}"'
    response["Digest"] = "sha-256=" + base64.b64encode(bytes.fromhex(built.sha256)).decode()  # RFC 3230
    return response


@require_safe
def latest(request: HttpRequest) -> HttpResponse:
    """``GET /agent/latest``: a redirect to the wheel's versioned URL."""
    return _no_cache(HttpResponseRedirect(agent_dist.agent_wheel().path))


@require_safe
def sha256sums(request: HttpRequest) -> HttpResponse:
    """``GET /agent/SHA256SUMS``: ``<sha256>  <wheel filename>``, as ``sha256sum -c`` reads it."""
    built = agent_dist.agent_wheel()
    return _no_cache(HttpResponse(f"{built.sha256}  {built.filename}\n", content_type="text/plain"))


@require_safe
def install_script(request: HttpRequest) -> HttpResponse:
    """``GET /agent/install.sh``: the enrollment script (the token comes from the node's environment)."""
    return _no_cache(HttpResponse(agent_dist.install_script(), content_type=SHELL_CONTENT_TYPE))


@require_safe
def unit(request: HttpRequest) -> HttpResponse:
    """``GET /agent/powernode-agent.service``: the systemd unit install.sh installs."""
    return _no_cache(HttpResponse(agent_dist.unit_text(), content_type="text/plain; charset=utf-8"))


@require_safe
def platform_ca(request: HttpRequest) -> HttpResponse:
    """``GET /agent/platform-ca.pem``: the CA bundle for the platform's https certificate, when configured."""
    pem = agent_dist.platform_ca_pem()
    if pem is None:
        return _not_found(
            "no platform CA is configured (POWERNODE_AGENT_PLATFORM_CA_FILE): nodes use their system CAs"
        )
    return _no_cache(HttpResponse(pem, content_type="application/x-pem-file"))
