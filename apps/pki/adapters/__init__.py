"""CA adapters: one narrow interface (base.CaAdapter) over the local CA and Vault/OpenBao PKI.

Nothing in this package imports Django, so benches and scripts can drive it directly.
"""

from apps.pki.adapters.base import CaAdapter, CaStatus, IssuedKeypair, SignedCertificate, Usage

__all__ = ["CaAdapter", "CaStatus", "IssuedKeypair", "SignedCertificate", "Usage"]
