"""Node templates and instances, agent authentication and heartbeats."""
