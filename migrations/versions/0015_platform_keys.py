"""Platform keys: the operator's API keys, the only ones that may add money to a balance.

A tenant's keys (``api_keys``) belong to the tenant, and its ``admin`` keys make more of them;
a key that could top up a balance must therefore never be one of them. Platform keys live in a
table of their own, made only by the operator's CLI (``balsong platform-key create``), and no
tenant key may carry a ``platform`` scope (a CHECK, in case one is ever written by hand).

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0013"
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
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE api_keys DROP CONSTRAINT api_keys_no_platform_scope;
        DROP TABLE platform_keys;
        """
    )
