"""Where a job was made: ``jobs.origin`` is ``api`` (POST /v1/jobs, the default) or ``console``
(the console's send page, 발송하기); the console's history download shows it.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: PostgreSQL 11+ adds it without rewriting the table.
    op.execute(
        "ALTER TABLE jobs ADD COLUMN origin text NOT NULL DEFAULT 'api' CHECK (origin IN ('api', 'console'))"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE jobs DROP COLUMN origin")
