"""The ``balsong`` command line."""
