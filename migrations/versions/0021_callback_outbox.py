"""Status callbacks: where each job's callbacks go, the outbox of events, and each endpoint's state.

- ``jobs.callback_url``: fixed when the job is accepted (its own ``callback_url``, else the
  tenant's default then); NULL: the job makes no events.
- ``callback_events``: the outbox. A row holds the events one statement made for one job (up to
  1,000 recipient events, or one ``job.finished``), written in the transaction that made the
  changes, so no event exists without its change and no change without its event. Rows of one
  endpoint are delivered in ``id`` order; ``state`` says what became of them.
- ``callback_endpoints``: one per (tenant, URL): its back-off after failures, its last error, and
  whether a 410 disabled it.
- ``callback_dispatcher_lease``: which dispatcher process is the active one.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE jobs ADD COLUMN callback_url text CHECK (length(callback_url) <= 2000);

        CREATE TABLE callback_events (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id    bigint NOT NULL,
            job_id       bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            url          text NOT NULL,
            kind         text NOT NULL CHECK (kind IN ('recipient', 'job.finished')),
            -- One element per event (recipient events); NULL for job.finished. lz4: a row of
            -- 1,000 events is compressed in the flusher's transaction, and pglz costs 3-4x more.
            seqs         integer[] COMPRESSION lz4,
            attempts     integer[] COMPRESSION lz4,
            statuses     text[] COMPRESSION lz4,
            codes        text[] COMPRESSION lz4,
            texts        text[] COMPRESSION lz4,
            occurred_at  timestamptz[] COMPRESSION lz4 NOT NULL,
            event_count  integer NOT NULL CHECK (event_count BETWEEN 1 AND 1000),
            created_at   timestamptz NOT NULL DEFAULT now(),
            state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
            tries        integer NOT NULL DEFAULT 0,
            last_error   text,
            finished_at  timestamptz
        );
        CREATE INDEX callback_events_pending ON callback_events (tenant_id, url, id) WHERE state = 'pending';
        CREATE INDEX callback_events_job ON callback_events (job_id, id);

        CREATE TABLE callback_endpoints (
            tenant_id        bigint NOT NULL REFERENCES tenants (id),
            url              text NOT NULL,
            failures         integer NOT NULL DEFAULT 0,
            next_attempt_at  timestamptz,
            last_attempt_at  timestamptz,
            last_success_at  timestamptz,
            last_error       text,
            disabled_at      timestamptz,
            PRIMARY KEY (tenant_id, url)
        );

        -- The one active dispatcher's lease (a standby takes it over once it lapses).
        CREATE TABLE callback_dispatcher_lease (
            id      integer PRIMARY KEY CHECK (id = 1),
            holder  text NOT NULL,
            until   timestamptz NOT NULL
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE callback_dispatcher_lease;
        DROP TABLE callback_endpoints;
        DROP TABLE callback_events;
        ALTER TABLE jobs DROP COLUMN callback_url;
        """
    )
