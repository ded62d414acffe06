"""Dispatch: stored recipients reach a carrier. Planning batches, claiming one (and the rules on
whether a job may submit), rate limits shared by every worker, sending a slice, reconciling a batch
whose outcome is unknown, cancelling, leases and our per-recipient references. May import engine's
runtime modules, engine.lifecycle (statuses, the recorder), engine.accounts, engine.callbacks (the
outbox a cancel writes to), carriers/ and metrics/.
"""
