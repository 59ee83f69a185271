"""Internal CA: certificates for docker hosts, platform and operator clients, CRL, Vault KV mirror."""
