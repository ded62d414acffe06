"""The caller's own reference (``reference``: an order or member number) on a job and on each
recipient, kept as given and handed back in views, exports and callbacks
(engine.intake.client_reference).

Both columns are nullable without a default: adding them changes only the catalogue, however
many recipients are stored, and the partitions (``PARTITION OF recipients``) take the column
with their parent. No index on ``recipients.reference``: a job's recipients are filtered by it
within that job's primary-key range, and every index on recipients costs COPY time at intake
(see 0012, 0013). ``jobs`` gets a partial index for the history's filter by reference.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE recipients ADD COLUMN reference text;
        ALTER TABLE jobs ADD COLUMN reference text;
        CREATE INDEX jobs_by_reference ON jobs (tenant_id, reference, created_at DESC, id DESC)
            WHERE reference IS NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX jobs_by_reference;
        ALTER TABLE jobs DROP COLUMN reference;
        ALTER TABLE recipients DROP COLUMN reference;
        """
    )
