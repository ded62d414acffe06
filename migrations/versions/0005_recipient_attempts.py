"""Recipient attempts: a recipient the carrier reported as failed for a passing reason ("phone
off") is sent again under a new reference; ``attempt`` says which, ``first_attempt_at`` starts its
retry deadline.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE recipients ADD COLUMN attempt smallint NOT NULL DEFAULT 0;
        ALTER TABLE recipients ADD COLUMN first_attempt_at timestamptz;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE recipients DROP COLUMN first_attempt_at;
        ALTER TABLE recipients DROP COLUMN attempt;
        """
    )
