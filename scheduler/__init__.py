"""The scheduler process: periodic duties and the deployment-wide gauges it serves.

Owns what runs on a timer rather than on a message (today: the gauges read at scrape time,
`scheduler.system_metrics`; the duties themselves still live in ``actors/duties.py``). May import
engine/, carriers/ and metrics/; nothing imports it but cli/.
"""
