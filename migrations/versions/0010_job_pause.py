"""Pausing a job whose failure ratio passed the limit: when, and why (shown to its sender).

Job statuses after this revision add:
  sending -> paused (too many of its recipients failed at the carrier; nothing more is
             submitted until an operator resumes it) -> sending

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE jobs ADD COLUMN paused_at timestamptz;
        -- Why the job was paused, in words its sender can act on (failure ratio and sample).
        ALTER TABLE jobs ADD COLUMN paused_reason text;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        UPDATE jobs SET status = 'sending' WHERE status = 'paused';
        ALTER TABLE jobs DROP COLUMN paused_reason;
        ALTER TABLE jobs DROP COLUMN paused_at;
        """
    )
