"""Worker leases: each worker process holds a lease it renews every second; a batch is claimed
under the claimer's lease (``batches.claimed_by``), and a claim whose lease has expired is taken
over at once, and so is a claim its holder stopped renewing (its thread gave up on it); see
engine.dispatch.worker_leases.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE worker_leases (
            id text PRIMARY KEY,
            alive_until timestamptz NOT NULL,
            renewed_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX worker_leases_alive_until ON worker_leases (alive_until);
        CREATE INDEX batches_claimed ON batches (claimed_by) WHERE state = 'claimed';
        """
    )


def downgrade() -> None:
    op.execute("DROP INDEX batches_claimed; DROP TABLE worker_leases;")
