"""Reservations, cancel, resend and retention: what the operator actions need beyond 0006.

Job statuses added to those of 0006:
  preparing -> accepted   a resend job whose recipients the resend_failed actor is still copying
                          from the original job (the API answers with its id at once);
                          resend_reasons keeps the reason codes asked for, so a job created but
                          never filled (a crash) is filled again by the scheduler's outbox.
  preparing -> cancelled  a resend cancelled before it was filled.

Recipient status added: cancelled (never submitted: its job was cancelled, or its reservation
was missed); final, like delivered / failed / expired.

Retention deletes a month's jobs by creation time: jobs_created serves that range.

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- NULL: resend every failed recipient; else only those whose reason code is listed.
        ALTER TABLE jobs ADD COLUMN resend_reasons text[];
        CREATE INDEX jobs_created ON jobs (created_at);
        CREATE INDEX jobs_preparing ON jobs (created_at) WHERE status = 'preparing';
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX jobs_preparing;
        DROP INDEX jobs_created;
        ALTER TABLE jobs DROP COLUMN resend_reasons;
        """
    )
