"""Adapters over the external systems this app drives (the Docker engine API)."""
