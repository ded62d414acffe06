"""balsong's domain: jobs, recipients, channels, validation, results, clock and settings."""
