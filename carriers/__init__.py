"""Carrier adapters: one module per provider API, the protocol they share, and the simulator."""
