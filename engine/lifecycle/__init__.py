"""The recipient and job lifecycle: what a recipient or a job is, and what it may become.

Owns the statuses (`statuses`, enums defined once), the one transition table that says what an
event does to a recipient (`transitions`), and a claimed batch's course after each slice
(`batches`: retry batches, expiry, hand-back, drop, the job's next batches), which returns what
to publish rather than publishing it. May import the rest of engine/, carriers/ and metrics/;
never actors/.
"""
