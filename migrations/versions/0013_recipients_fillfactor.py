"""Recipients partitions keep half of every page free, so outcomes are written as HOT updates.

A recipient row is written once by COPY and then updated about twice (its submission, then its
delivery report). COPY fills pages completely; every update then had to put the new row version
on another page and add an entry to each of the table's indexes (0.01 % of updates were HOT on a
200,000-recipient job). With room on the page, the new version stays there and no index is
touched (none names a column an outcome changes: see 0012); page pruning reclaims the previous
version for the next update. The table is larger when just loaded, but no larger once its rows
are updated: without HOT, each update left a dead version behind elsewhere.

Existing partitions take the setting for the pages they add from now on.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _partition_function(storage: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION ensure_recipients_partition(month date) RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE
            first_day date := date_trunc('month', month)::date;
            name text := format('recipients_%s', to_char(first_day, 'YYYY_MM'));
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext('ensure_recipients_partition'));
            IF to_regclass(name) IS NULL THEN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF recipients FOR VALUES FROM (%L) TO (%L){storage}',
                    name,
                    first_day::timestamp AT TIME ZONE 'UTC',
                    (first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC'
                );
            END IF;
        END $$;
    """


def _set_on_partitions(setting: str) -> str:
    return f"""
        DO $$
        DECLARE
            part regclass;
        BEGIN
            FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'recipients'::regclass
            LOOP
                EXECUTE format('ALTER TABLE %s {setting}', part);
            END LOOP;
        END $$;
    """


def upgrade() -> None:
    op.execute(_partition_function(" WITH (fillfactor = 50)"))
    op.execute(_set_on_partitions("SET (fillfactor = 50)"))


def downgrade() -> None:
    op.execute(_set_on_partitions("RESET (fillfactor)"))
    op.execute(_partition_function(""))
