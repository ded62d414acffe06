"""Core schema: tenants, API keys, sender numbers, jobs, batches, recipients (monthly partitions).

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE tenants (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name        text NOT NULL UNIQUE,
            created_at  timestamptz NOT NULL DEFAULT now()
        );

        -- Keys are 32 random bytes, so a plain SHA-256 is a safe one-way store (no salt or slow
        -- hash needed, unlike passwords); the prefix lets an operator tell keys apart.
        CREATE TABLE api_keys (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id   bigint NOT NULL REFERENCES tenants (id),
            key_hash    bytea NOT NULL UNIQUE,
            key_prefix  text NOT NULL,
            scopes      text[] NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            revoked_at  timestamptz
        );

        CREATE TABLE sender_numbers (
            tenant_id   bigint NOT NULL REFERENCES tenants (id),
            number      text NOT NULL,
            state       text NOT NULL DEFAULT 'approved'
                        CHECK (state IN ('pending', 'approved', 'blocked')),
            created_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, number)
        );

        CREATE TABLE jobs (
            id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id           bigint NOT NULL REFERENCES tenants (id),
            created_at          timestamptz NOT NULL,
            status              text NOT NULL,
            requested_channel   text NOT NULL,
            priority            text NOT NULL DEFAULT 'bulk',
            sender              text NOT NULL,
            title               text,
            body                text NOT NULL,
            variables           text[] NOT NULL DEFAULT '{}',
            idempotency_key     text,
            request_hash        bytea,
            -- Recipients stored: valid ones first (SMS, then LMS), then invalid ones.
            total               integer NOT NULL,
            sms_count           integer NOT NULL,
            lms_count           integer NOT NULL,
            invalid_count       integer NOT NULL,
            duplicates_removed  integer NOT NULL DEFAULT 0,
            planned_at          timestamptz,
            first_sent_at       timestamptz,
            completed_at        timestamptz,
            UNIQUE (tenant_id, idempotency_key)
        );
        CREATE INDEX jobs_by_tenant ON jobs (tenant_id, created_at DESC, id DESC);
        CREATE INDEX jobs_unplanned ON jobs (created_at) WHERE planned_at IS NULL;
        CREATE INDEX jobs_open ON jobs (id) WHERE completed_at IS NULL;

        -- One row per send_batch message: a contiguous range of recipient seqs on one channel.
        -- state: planned -> claimed (a worker owns it and is calling the carrier) -> recorded.
        CREATE TABLE batches (
            job_id       bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            seq          integer NOT NULL,
            channel      text NOT NULL,
            first_seq    integer NOT NULL,
            last_seq     integer NOT NULL,
            state        text NOT NULL DEFAULT 'planned'
                         CHECK (state IN ('planned', 'claimed', 'recorded')),
            attempts     integer NOT NULL DEFAULT 0,
            enqueued_at  timestamptz,
            claimed_at   timestamptz,
            claimed_by   text,
            recorded_at  timestamptz,
            PRIMARY KEY (job_id, seq)
        );
        CREATE INDEX batches_open ON batches (state, enqueued_at, claimed_at) WHERE state <> 'recorded';

        -- One row per recipient, partitioned by month of the job's creation so that retention
        -- drops whole partitions. status: queued -> submitted -> delivered | failed.
        CREATE TABLE recipients (
            job_created_at  timestamptz NOT NULL,
            job_id          bigint NOT NULL,
            seq             integer NOT NULL,
            phone           text NOT NULL,
            member_id       text,
            "values"        text[],
            channel         text,
            status          text NOT NULL,
            reason_code     text,
            reason_text     text,
            carrier_id      text,
            submitted_at    timestamptz,
            completed_at    timestamptz,
            PRIMARY KEY (job_id, seq, job_created_at)
        ) PARTITION BY RANGE (job_created_at);

        -- Creates the (UTC) month's partition of recipients if it is missing; safe to call concurrently.
        CREATE FUNCTION ensure_recipients_partition(month date) RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE
            first_day date := date_trunc('month', month)::date;
            name text := format('recipients_%s', to_char(first_day, 'YYYY_MM'));
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext('ensure_recipients_partition'));
            IF to_regclass(name) IS NULL THEN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF recipients FOR VALUES FROM (%L) TO (%L)',
                    name,
                    first_day::timestamp AT TIME ZONE 'UTC',
                    (first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC'
                );
            END IF;
        END $$;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION ensure_recipients_partition(date);
        DROP TABLE recipients;
        DROP TABLE batches;
        DROP TABLE jobs;
        DROP TABLE sender_numbers;
        DROP TABLE api_keys;
        DROP TABLE tenants;
        """
    )
