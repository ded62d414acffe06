"""A tenant's status callbacks: its default URL and its signing secrets (the current one, and
during a rotation the previous one until ``callback_previous_until``); see engine.callbacks.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE tenants
            ADD COLUMN callback_url text CHECK (length(callback_url) <= 2000),
            ADD COLUMN callback_secret text,
            ADD COLUMN callback_previous_secret text,
            ADD COLUMN callback_previous_until timestamptz;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE tenants DROP COLUMN callback_url, DROP COLUMN callback_secret,
            DROP COLUMN callback_previous_secret, DROP COLUMN callback_previous_until;
        """
    )
