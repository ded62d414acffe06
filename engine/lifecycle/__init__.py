"""The recipient and job lifecycle: what a recipient or a job is, what it may become, and the
account of it.

- `statuses`: job and recipient statuses, enums defined once, with their Korean labels;
- `transitions`: the one table of what an event does to a recipient (new status, follow-up,
  counter changes), which the recorder, the flusher and `counters.recount` all use;
- `batches`: a claimed batch's course after each slice (retry batches, expiry, hand-back, drop,
  the job's next batches), returning what to publish rather than publishing it;
- `reports`: the one way in for carrier reports, webhook, poll or lookup;
- `report_deadline`: a recipient in flight past its channel's report deadline, asked about once
  more, then ended ``unknown``;
- `results` (the recorder), `flusher` (and its door: `flush_admission`, `entry_checks`,
  `report_matching`, `dead_entries`), `counters`, `retries`, `fallback`, `completion`,
  `settlement`, `pausing`, `pipeline_metrics`;
- `job_stats`: a finished job's recipients added once to its tenant's send statistics.

May import engine's runtime modules, engine.dispatch, engine.accounts, engine.callbacks (the
outbox its changes write their events to), carriers/ and metrics/; never actors/.
"""
