"""powernode-agent: runs on a NodeInstance and carries out the platform's desired state."""

__version__ = "0.1.0"
