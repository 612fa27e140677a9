"""offers (what the bot announces) and polls (one row per loop iteration), all releases

Revision ID: 0001_offers_polls
Revises:
"""
from alembic import op

revision = "0001_offers_polls"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE offers (
            id          bigserial   PRIMARY KEY,
            store       text        NOT NULL,
            title       text        NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("""
        CREATE TABLE polls (
            id           bigserial   PRIMARY KEY,
            polled_at    timestamptz NOT NULL DEFAULT now(),
            offers_seen  integer     NOT NULL,
            release      text        NOT NULL
        )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE polls")
    op.execute("DROP TABLE offers")
