"""Balances, an append-only ledger, per-tenant prices; advertising jobs and opt-out lists.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- A tenant's own unit price for a channel, in points; channels without one use the
        -- settings' price (BALSONG_PRICE_<CHANNEL>).
        CREATE TABLE tenant_prices (
            tenant_id   bigint NOT NULL REFERENCES tenants (id),
            channel     text NOT NULL
                        CHECK (channel IN ('sms', 'lms', 'kakao', 'fallback_sms', 'fallback_lms')),
            unit_price  numeric(12, 2) NOT NULL CHECK (unit_price >= 0),
            PRIMARY KEY (tenant_id, channel)
        );

        -- Every change of a balance, never updated or deleted (a trigger refuses both). amount is
        -- signed: a charge takes points away, a refund or top-up gives them. job_id is a plain
        -- number, not a foreign key: money records outlive the one-year retention of results.
        CREATE TABLE ledger (
            id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id      bigint NOT NULL REFERENCES tenants (id),
            kind           text NOT NULL CHECK (kind IN ('charge', 'refund', 'top_up', 'adjustment')),
            amount         numeric(14, 2) NOT NULL,
            balance_after  numeric(14, 2) NOT NULL,
            job_id         bigint,
            memo           text,
            created_at     timestamptz NOT NULL DEFAULT now(),
            CHECK (kind <> 'charge' OR amount <= 0),
            CHECK (kind NOT IN ('refund', 'top_up') OR amount >= 0),
            CHECK (kind NOT IN ('charge', 'refund') OR job_id IS NOT NULL)
        );
        CREATE INDEX ledger_by_tenant ON ledger (tenant_id, id);
        -- A job is charged once (at intake) and refunded once (at settlement).
        CREATE UNIQUE INDEX ledger_once_per_job ON ledger (job_id, kind) WHERE kind IN ('charge', 'refund');

        CREATE FUNCTION ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the ledger is append-only: correct it with an adjustment row';
        END $$;
        CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
            FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();

        -- The ledger's running sum per tenant, kept in the same transaction as each ledger row;
        -- its row lock is what serialises two jobs reserving from one balance.
        CREATE TABLE tenant_balances (
            tenant_id   bigint PRIMARY KEY REFERENCES tenants (id),
            balance     numeric(14, 2) NOT NULL DEFAULT 0,
            updated_at  timestamptz NOT NULL DEFAULT now()
        );

        ALTER TABLE jobs ADD COLUMN advertisement boolean NOT NULL DEFAULT false;
        -- The unit prices the job was reserved at: its settlement refunds at the same prices,
        -- whatever the price list says by then.
        ALTER TABLE jobs ADD COLUMN prices jsonb;
        -- Set when the job's failures were refunded; the settlement sweep looks for finished
        -- jobs without it.
        ALTER TABLE jobs ADD COLUMN settled_at timestamptz;
        CREATE INDEX jobs_unsettled ON jobs (completed_at)
            WHERE settled_at IS NULL AND completed_at IS NOT NULL;

        -- Numbers that asked a tenant to send them no more advertising (정보통신망법 제50조).
        CREATE TABLE opt_outs (
            -- A page cursor that is not the number itself.
            id          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            tenant_id   bigint NOT NULL REFERENCES tenants (id),
            phone       text NOT NULL,
            source      text NOT NULL DEFAULT 'api',
            created_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, phone)
        );

        -- A tenant's own intake limits, replacing the settings' (NULL: the settings' apply).
        ALTER TABLE tenants ADD COLUMN intake_requests_per_second real;
        ALTER TABLE tenants ADD COLUMN intake_recipients_per_day integer;

        -- Sender numbers registered through the API wait for an operator's approval.
        ALTER TABLE sender_numbers ADD COLUMN reviewed_at timestamptz;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE sender_numbers DROP COLUMN reviewed_at;
        ALTER TABLE tenants DROP COLUMN intake_recipients_per_day;
        ALTER TABLE tenants DROP COLUMN intake_requests_per_second;
        DROP TABLE opt_outs;
        DROP INDEX jobs_unsettled;
        ALTER TABLE jobs DROP COLUMN settled_at;
        ALTER TABLE jobs DROP COLUMN prices;
        ALTER TABLE jobs DROP COLUMN advertisement;
        DROP TABLE tenant_balances;
        DROP TABLE ledger;
        DROP FUNCTION ledger_is_append_only();
        DROP TABLE tenant_prices;
        """
    )
