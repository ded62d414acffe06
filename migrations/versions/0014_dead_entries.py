"""Entries set aside: reports, hooks and result-stream entries a stage could not apply.

One malformed carrier report once stopped result writing for every tenant (the flusher failed
on it, pass after pass). Every stage now sets such an entry aside here and applies the rest;
see ``engine.lifecycle.dead_entries``. ``entry`` is JSON text with control characters escaped (``jsonb``
and ``text`` both refuse NUL, which is what some of these entries hold).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE dead_entries (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            stage       text NOT NULL,
            carrier     text,
            reason      text NOT NULL,
            error       text NOT NULL,
            entry       text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX dead_entries_created_at ON dead_entries (created_at);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE dead_entries")
