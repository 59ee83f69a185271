"""The module catalog and module assignments to node templates."""
