"""balsong's HTTP API."""
