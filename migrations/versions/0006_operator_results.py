"""Operator results: job kind, reservations, cancel, resend links, and indexes for history filters.

Job statuses after this revision:
  scheduled -> accepted -> sending -> completed | partially_failed | failed
  scheduled -> cancelled (a reservation cancelled whole) | missed (its time passed while down)
  accepted/sending -> cancelled (no new batches planned or submitted; what went out stays)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- kind is chosen by the caller at intake: a person pressing send, a reservation, or an
        -- upstream system's trigger (order notices, OTP).
        ALTER TABLE jobs ADD COLUMN kind text NOT NULL DEFAULT 'manual'
            CHECK (kind IN ('manual', 'scheduled', 'automatic'));
        ALTER TABLE jobs ADD COLUMN scheduled_at timestamptz;
        ALTER TABLE jobs ADD COLUMN cancelled_at timestamptz;
        -- A resend job points at the job whose failures it sends again.
        ALTER TABLE jobs ADD COLUMN resent_from bigint REFERENCES jobs (id) ON DELETE SET NULL;

        -- The reservation pump looks for due reservations only.
        CREATE INDEX jobs_scheduled ON jobs (scheduled_at) WHERE status = 'scheduled';
        CREATE INDEX jobs_by_tenant_status ON jobs (tenant_id, status, created_at DESC, id DESC);

        -- Recipient filters on a job: by last four digits of the phone number. The digits lead:
        -- led by job_id, the index looked to the planner like a way to read one job's rows, and
        -- before a partition's first ANALYZE it chose it over the primary key (a scan per row).
        CREATE INDEX recipients_phone_last4 ON recipients (right(phone, 4), job_id);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX recipients_phone_last4;
        DROP INDEX jobs_by_tenant_status;
        DROP INDEX jobs_scheduled;
        ALTER TABLE jobs DROP COLUMN resent_from;
        ALTER TABLE jobs DROP COLUMN cancelled_at;
        ALTER TABLE jobs DROP COLUMN scheduled_at;
        ALTER TABLE jobs DROP COLUMN kind;
        """
    )
