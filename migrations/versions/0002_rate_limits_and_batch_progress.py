"""Per-tenant and per-sender rate limits; batch progress for time-sliced sending.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- A batch is sent in time slices: after each slice the rest goes back to the queue, and
        -- next_seq says where the next slice starts (recipients before it are submitted).
        ALTER TABLE batches ADD COLUMN next_seq integer;
        UPDATE batches SET next_seq = first_seq;
        ALTER TABLE batches ALTER COLUMN next_seq SET NOT NULL;

        -- 'sent': the worker has every outcome (in Redis) and has let the batch go; the flusher
        -- then makes it 'recorded'. A sent batch no longer holds a place in its job's window.
        ALTER TABLE batches DROP CONSTRAINT batches_state_check;
        ALTER TABLE batches ADD CONSTRAINT batches_state_check
            CHECK (state IN ('planned', 'claimed', 'sent', 'recorded'));
        ALTER TABLE batches ADD COLUMN sent_at timestamptz;

        -- Caps below the channel's own (the carrier contract's), for one tenant or one of its
        -- sender numbers; every applicable cap holds at once.
        CREATE TABLE rate_limits (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id    bigint NOT NULL REFERENCES tenants (id),
            sender       text,
            channel      text NOT NULL,
            per_second   double precision NOT NULL CHECK (per_second > 0),
            UNIQUE NULLS NOT DISTINCT (tenant_id, sender, channel)
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE rate_limits;
        UPDATE batches SET state = 'claimed' WHERE state = 'sent';
        ALTER TABLE batches DROP CONSTRAINT batches_state_check;
        ALTER TABLE batches ADD CONSTRAINT batches_state_check
            CHECK (state IN ('planned', 'claimed', 'recorded'));
        ALTER TABLE batches DROP COLUMN sent_at;
        ALTER TABLE batches DROP COLUMN next_seq;
        """
    )
