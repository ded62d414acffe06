"""KakaoTalk AlimTalk jobs and their SMS/LMS fallback.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- A Kakao job names its approved template; its fallback (if any) is the SMS/LMS text
        -- sent to recipients whose Kakao message failed finally.
        ALTER TABLE jobs ADD COLUMN kakao_count integer NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN template_code text;
        ALTER TABLE jobs ADD COLUMN fallback_channel text;
        ALTER TABLE jobs ADD COLUMN fallback_body text;
        ALTER TABLE jobs ADD COLUMN fallback_title text;

        -- A recipient handed to SMS/LMS gets status 'fallback' (its Kakao outcome stays in its
        -- reason) and a second row, at seq = job total + its seq, for the fallback message;
        -- fallback_of links it back.
        ALTER TABLE recipients ADD COLUMN fallback_of integer;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE recipients DROP COLUMN fallback_of;
        ALTER TABLE jobs DROP COLUMN fallback_title;
        ALTER TABLE jobs DROP COLUMN fallback_body;
        ALTER TABLE jobs DROP COLUMN fallback_channel;
        ALTER TABLE jobs DROP COLUMN template_code;
        ALTER TABLE jobs DROP COLUMN kakao_count;
        """
    )
