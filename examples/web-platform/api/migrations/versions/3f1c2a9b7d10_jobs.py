"""jobs: the cleaning jobs customers book (all releases)

Revision ID: 3f1c2a9b7d10
Revises:
"""
from alembic import op

revision = "3f1c2a9b7d10"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE jobs (
            id          bigserial   PRIMARY KEY,
            customer    text        NOT NULL,
            address     text        NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now()
        )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE jobs")
