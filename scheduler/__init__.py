"""The scheduler process: periodic duties, each under a Redis lease, and the deployment-wide
gauges it serves.

`runner` runs duties on their intervals (safe as several replicas: one lease per duty),
`duties` are the duties themselves (the result flusher, retry and reservation pumps, the report
poller, outbox, sweeps, settlement, retention), `system_metrics` the gauges read at scrape time.
May import actors/ (to publish), engine/, carriers/ and metrics/; nothing imports it but cli/.
"""
