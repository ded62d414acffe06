"""The carrier requests a batch went out in (``batches.request_ids``): a batch taken over is
reconciled by asking the carrier for those requests, a thousand recipients per query, before
asking one reference per query for the rest (engine.dispatch.reconcile).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE batches ADD COLUMN request_ids text[]")


def downgrade() -> None:
    op.execute("ALTER TABLE batches DROP COLUMN request_ids")
