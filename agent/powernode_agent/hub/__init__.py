"""The SDWAN hub: ``powernode-agent hub run|once|status|down|apply`` (DESIGN §4b, hub contract).

The lab (and anything else without a platform) calls :func:`apply` with a desired-state dict shaped like
the answer of ``POST /api/v1/hub/sync``.
"""

from .config import HubConfig, load_hub_config
from .runner import HubRunner, apply, down, status

__all__ = ["HubConfig", "HubRunner", "apply", "down", "load_hub_config", "status"]
