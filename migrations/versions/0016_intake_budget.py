"""A tenant's own intake budget: job request bytes in flight and submissions at once.

NULL: the settings' budget (BALSONG_INTAKE_MAX_BYTES_IN_FLIGHT_PER_TENANT,
BALSONG_INTAKE_MAX_CONCURRENT_PER_TENANT); 0: no limit. See engine.intake.intake_budget.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE tenants
            ADD COLUMN intake_max_bytes_in_flight bigint CHECK (intake_max_bytes_in_flight >= 0),
            ADD COLUMN intake_max_concurrent integer CHECK (intake_max_concurrent >= 0);
        """
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE tenants DROP COLUMN intake_max_bytes_in_flight, DROP COLUMN intake_max_concurrent"
    )
