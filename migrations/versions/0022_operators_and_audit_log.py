"""Operator accounts of a tenant, and the audit log of who did what.

- ``operators``: people who sign in to the console with an email and a password (argon2id hash,
  never the password), each of one tenant with one role (``admin``, ``sender``, ``viewer``;
  `engine.accounts.operators` maps roles onto API scopes). Emails are unique across tenants, so
  an email and a password name one account. ``failed_sign_ins`` counts failures since the last
  success; ``locked_until`` is set when they reach the limit. ``session_epoch`` grows when the
  password is reset, which ends the operator's console sessions; ``disabled_at`` ends them too.
- ``audit_log``: one row per action a person or a key took on a tenant's account (sent, resent,
  cancelled, resumed a job, replayed its callbacks, downloaded whole numbers, money, sender
  numbers, operators), written in the action's transaction where practical. Append-only: a
  trigger refuses UPDATE and DELETE. Not purged with results (retention) — an access log is kept
  longer than what it records.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE operators (
            id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id        bigint NOT NULL REFERENCES tenants (id),
            email            text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
            role             text NOT NULL CHECK (role IN ('admin', 'sender', 'viewer')),
            password_hash    text NOT NULL,
            failed_sign_ins  integer NOT NULL DEFAULT 0 CHECK (failed_sign_ins >= 0),
            locked_until     timestamptz,
            session_epoch    integer NOT NULL DEFAULT 0,
            created_at       timestamptz NOT NULL DEFAULT now(),
            last_sign_in_at  timestamptz,
            disabled_at      timestamptz
        );
        CREATE UNIQUE INDEX operators_email ON operators (email);
        CREATE INDEX operators_tenant ON operators (tenant_id, email);

        CREATE TABLE audit_log (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id   bigint NOT NULL REFERENCES tenants (id),
            created_at  timestamptz NOT NULL DEFAULT now(),
            actor       text NOT NULL CHECK (length(actor) BETWEEN 1 AND 320),
            action      text NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
            subject     text CHECK (length(subject) <= 320),
            details     jsonb
        );
        -- The console's pages: a tenant's newest first, and a range of days.
        CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id DESC);
        CREATE INDEX audit_log_tenant_time ON audit_log (tenant_id, created_at);

        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
        END;
        $$;
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE audit_log;
        DROP FUNCTION audit_log_append_only();
        DROP TABLE operators;
        """
    )
