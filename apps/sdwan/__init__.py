"""SDWAN: WireGuard overlay networks, their peers (one IPv6 /128 each) and device access grants."""
