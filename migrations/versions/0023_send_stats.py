"""Send statistics (통계): counters per tenant, KST hour and channel, and failures by reason per
tenant, KST day and channel, written once per job when it finishes (see
``engine.lifecycle.job_stats``), so that statistics never scan recipients.

- ``send_stats_hourly``: one row per (tenant, KST hour, channel). ``kst_hour`` is the hour as a
  Korean wall-clock time (``timestamp``, no zone: Korea keeps no daylight saving time, so an
  hour and a day in KST are fixed ranges of instants). ``channel`` is ``sms``, ``lms``, ``kakao``,
  or ``intake`` for recipients refused at intake (they never went on a channel). A message counts
  in the hour it was first handed to a carrier; one never handed over (refused at intake,
  cancelled) in the hour its job was created.
- ``send_stats_reasons``: failures (failed, expired, refused at intake) by reason code per
  (tenant, KST day, channel), with the last text the reason came with.
- ``jobs.stats_counted_at``: when the job's recipients were added to the counters; a job is added
  only while it is NULL, so no job is ever counted twice.

Neither table holds personal data (counts and reason codes per tenant); retention keeps them
``stats_retention_days`` (longer than the results themselves, see ``engine.reporting.retention``).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0023"
# On the stats branch this follows 0021; renumbered to follow 0022 when merged.
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE jobs ADD COLUMN stats_counted_at timestamptz;

        CREATE TABLE send_stats_hourly (
            tenant_id   bigint NOT NULL REFERENCES tenants (id),
            kst_hour    timestamp NOT NULL CHECK (date_trunc('hour', kst_hour) = kst_hour),
            channel     text NOT NULL CHECK (channel IN ('sms', 'lms', 'kakao', 'intake')),
            delivered   bigint NOT NULL DEFAULT 0,
            failed      bigint NOT NULL DEFAULT 0,
            expired     bigint NOT NULL DEFAULT 0,
            unknown     bigint NOT NULL DEFAULT 0,
            fallbacks   bigint NOT NULL DEFAULT 0,
            cancelled   bigint NOT NULL DEFAULT 0,
            rejected    bigint NOT NULL DEFAULT 0,
            -- Points the delivered and unknown messages cost at their jobs' reserved prices.
            charged     numeric(18, 2) NOT NULL DEFAULT 0,
            PRIMARY KEY (tenant_id, kst_hour, channel)
        );

        CREATE TABLE send_stats_reasons (
            tenant_id    bigint NOT NULL REFERENCES tenants (id),
            kst_day      date NOT NULL,
            channel      text NOT NULL CHECK (channel IN ('sms', 'lms', 'kakao', 'intake')),
            reason_code  text NOT NULL,
            failures     bigint NOT NULL,
            reason_text  text,
            PRIMARY KEY (tenant_id, kst_day, channel, reason_code)
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE send_stats_reasons;
        DROP TABLE send_stats_hourly;
        ALTER TABLE jobs DROP COLUMN stats_counted_at;
        """
    )
