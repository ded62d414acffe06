"""Retry batches: recipients waiting to be tried again, with a due time and a deadline.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- A retry batch names its recipients (seqs) rather than a range; it waits ('waiting')
        -- until due_at, when the retry pump publishes it. first_attempt_at starts the
        -- recipients' retry deadline. The Redis retry ledger indexes waiting batches by due
        -- time and is rebuilt from here if Redis loses it.
        ALTER TABLE batches ADD COLUMN seqs integer[];
        ALTER TABLE batches ADD COLUMN due_at timestamptz;
        ALTER TABLE batches ADD COLUMN first_attempt_at timestamptz;
        ALTER TABLE batches ADD COLUMN retry_attempt integer NOT NULL DEFAULT 0;
        ALTER TABLE batches DROP CONSTRAINT batches_state_check;
        ALTER TABLE batches ADD CONSTRAINT batches_state_check
            CHECK (state IN ('waiting', 'planned', 'claimed', 'sent', 'recorded'));
        CREATE INDEX batches_waiting ON batches (due_at) WHERE state = 'waiting';
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX batches_waiting;
        DELETE FROM batches WHERE state = 'waiting';
        ALTER TABLE batches DROP CONSTRAINT batches_state_check;
        ALTER TABLE batches ADD CONSTRAINT batches_state_check
            CHECK (state IN ('planned', 'claimed', 'sent', 'recorded'));
        ALTER TABLE batches DROP COLUMN retry_attempt;
        ALTER TABLE batches DROP COLUMN first_attempt_at;
        ALTER TABLE batches DROP COLUMN due_at;
        ALTER TABLE batches DROP COLUMN seqs;
        """
    )
