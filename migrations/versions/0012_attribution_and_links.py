"""Revenue attribution (orders, last-touch to a delivered message) and tracked links (clicks).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- How long after a delivered message an order of the same member still counts for it.
        ALTER TABLE tenants ADD COLUMN attribution_window_seconds integer NOT NULL DEFAULT 259200
            CHECK (attribution_window_seconds > 0);

        -- Order events from a tenant's shop, one row per order number (the events are
        -- idempotent by it). A cancelled order stays, with its status, out of revenue.
        -- attributed_job_id / attributed_seq name the recipient row (the fallback's, for a
        -- KakaoTalk message delivered by SMS/LMS) of the last message delivered to the member
        -- within the window before ordered_at; NULL when there is none. They are plain numbers,
        -- not foreign keys: an order is the shop's record and outlives the one-year retention
        -- of results (a report then simply finds no job).
        CREATE TABLE orders (
            tenant_id           bigint NOT NULL REFERENCES tenants (id),
            order_number        text NOT NULL,
            member_id           text NOT NULL,
            ordered_at          timestamptz NOT NULL,
            amount              numeric(14, 2) NOT NULL CHECK (amount >= 0),
            status              text NOT NULL DEFAULT 'placed' CHECK (status IN ('placed', 'cancelled')),
            -- [{product_number, product_name, price, option, quantity}], as validated at intake.
            lines               jsonb NOT NULL DEFAULT '[]',
            received_at         timestamptz NOT NULL,
            updated_at          timestamptz NOT NULL,
            attributed_job_id   bigint,
            attributed_seq      integer,
            -- When attribution last changed the credit (NULL: never credited).
            attributed_at       timestamptz,
            PRIMARY KEY (tenant_id, order_number),
            CHECK ((attributed_job_id IS NULL) = (attributed_seq IS NULL))
        -- Room on each page for the new version of a row: order events and attribution rewrite
        -- recent orders, and with no indexed column changed PostgreSQL then updates in place (HOT).
        ) WITH (fillfactor = 80);
        -- A job's orders (results, listing, export).
        CREATE INDEX orders_by_job ON orders (attributed_job_id, member_id)
            WHERE attributed_job_id IS NOT NULL;
        -- The re-attribution sweep reads recent orders only.
        CREATE INDEX orders_by_time ON orders (ordered_at);

        -- Attribution looks up, per order, a member's delivered messages: an index on the parent,
        -- which PostgreSQL creates on every partition, present and future, of rows with a member
        -- id only. It names no column a send changes (status, completed_at): an index that did
        -- (status in its predicate, completed_at in its key) made every outcome written by the
        -- flusher a non-HOT update, and end-to-end throughput fell from ~18,000 to ~4,400
        -- recipients/s (bench/throughput.py). A member's few rows are filtered on the heap.
        CREATE INDEX recipients_delivered_by_member ON recipients (member_id)
            WHERE member_id IS NOT NULL;

        -- Tracked links: one short code per recipient and link of a job sent with track_links.
        -- Codes are random (engine.attribution.links), unique by this primary key; a collision at intake is
        -- retried with fresh codes.
        CREATE TABLE link_codes (
            code              text PRIMARY KEY,
            job_id            bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            job_created_at    timestamptz NOT NULL,
            seq               integer NOT NULL,
            url               text NOT NULL,
            first_clicked_at  timestamptz,
            clicks            integer NOT NULL DEFAULT 0
        );
        CREATE INDEX link_codes_by_recipient ON link_codes (job_id, seq);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE link_codes;
        DROP INDEX recipients_delivered_by_member;
        DROP TABLE orders;
        ALTER TABLE tenants DROP COLUMN attribution_window_seconds;
        """
    )
