"""Platform keys (the only keys that may add money to a balance); resend jobs found by source.

A tenant's keys (``api_keys``) belong to the tenant, and its ``admin`` keys make more of them;
a key that could top up a balance must therefore never be one of them. Platform keys live in a
table of their own, made only by the operator's CLI (``balsong platform-key create``), and no
tenant key may carry a ``platform`` scope (a CHECK, in case one is ever written by hand).

A resend of a job's failures looks for a resend of the same failures still running (it is
refused then: `engine.intake.resend`), and retention's ON DELETE SET NULL of ``resent_from`` looks for
the resends of each job it drops: both by ``resent_from``, which had no index.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE platform_keys (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name        text NOT NULL,
            key_hash    bytea NOT NULL UNIQUE,
            key_prefix  text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            revoked_at  timestamptz
        );
        ALTER TABLE api_keys ADD CONSTRAINT api_keys_no_platform_scope CHECK (NOT 'platform' = ANY (scopes));
        CREATE INDEX jobs_resent_from ON jobs (resent_from) WHERE resent_from IS NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX jobs_resent_from;
        ALTER TABLE api_keys DROP CONSTRAINT api_keys_no_platform_scope;
        DROP TABLE platform_keys;
        """
    )
