"""Every Redis key balsong uses, in one place.

Keys of one job share the hash tag ``{job:ID}``, the rate-limit buckets of one carrier channel
the tag ``{rate:CHANNEL}``, and the sign-in throttle's keys the tag ``{sign-in}``, so that, on
Redis Cluster, they live in one slot and can be used together in a script or transaction. Every
other key is used alone (one key per command), or in non-transactional pipelines, which a cluster
client splits per node. A new script or MULTI/EXEC over several keys must keep them under one tag.
"""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def job_counts(self, job_id: int) -> str:
        """Hash of a job's live counters (see `engine.lifecycle.counters`)."""
        return f"{self.prefix}:{{job:{job_id}}}:counts"

    @property
    def results(self) -> str:
        """Stream of recorded outcomes, drained into PostgreSQL by the flusher."""
        return f"{self.prefix}:results"

    def rate(self, channel: str, bucket: str) -> str:
        """A rate-limit bucket of ``channel`` (``channel``, ``tenant:ID``, ``penalty`` ...); all
        of a channel's buckets share one hash tag, so one script can touch them together."""
        return f"{self.prefix}:{{rate:{channel}}}:{bucket}"

    @property
    def retry_ledger(self) -> str:
        """Sorted set of waiting retry batches (``job:batch``) by due time (epoch seconds)."""
        return f"{self.prefix}:retry-ledger"

    @property
    def clock_offset(self) -> str:
        """Seconds added to the wall clock by a shared test clock."""
        return f"{self.prefix}:clock-offset"

    def lease(self, duty: str) -> str:
        """Lease held by the scheduler replica running ``duty``."""
        return f"{self.prefix}:lease:{duty}"

    def takeover(self, job_id: int, batch_seq: int) -> str:
        """Marks a batch whose takeover was just published (not published again meanwhile)."""
        return f"{self.prefix}:takeover:{job_id}:{batch_seq}"

    @property
    def generation(self) -> str:
        """A token set once per Redis data set: its absence means Redis lost its data."""
        return f"{self.prefix}:generation"

    def cursor(self, name: str) -> str:
        """A duty's persisted position (e.g. the report poller's last result time)."""
        return f"{self.prefix}:cursor:{name}"

    def console_session(self, token_hash: str) -> str:
        """An operator's console session (by the SHA-256 of its cookie), see `api.console.session`."""
        return f"{self.prefix}:console-session:{token_hash}"

    def send_draft(self, token: str, part: str) -> str:
        """A console send draft (`api.console.send_drafts`): its ``meta`` record or its staged
        ``rows``; one hash tag per draft, so its keys live in one Redis Cluster slot."""
        return f"{self.prefix}:{{send-draft:{token}}}:{part}"

    def sign_in(self, kind: str, name: str) -> str:
        """Sign-in throttle state (`engine.accounts.sign_in_limits`): a failure counter (``client``,
        ``prefix``) or a known-good key's marker (``good``); one hash tag, so one script uses them."""
        return f"{self.prefix}:{{sign-in}}:{kind}:{name}"

    def intake_budget(self, tenant_id: int) -> str:
        """Hash of a tenant's intakes in flight, lease id -> "expiry ms:bytes"
        (`engine.intake.intake_budget`)."""
        return f"{self.prefix}:intake-budget:{tenant_id}"

    def intake_rate(self, tenant_id: int, second: int) -> str:
        """Job submissions of a tenant in one second (`engine.intake.intake_limits`)."""
        return f"{self.prefix}:intake-rate:{tenant_id}:{second}"
