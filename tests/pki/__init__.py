"""Tests of the internal CA: adapter contract, Vault faults, services, CRL endpoint."""
