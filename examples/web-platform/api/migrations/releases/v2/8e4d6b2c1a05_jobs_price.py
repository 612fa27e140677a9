"""jobs.price_cents (release v2): additive, with a default, so v1 still inserts

Revision ID: 8e4d6b2c1a05
Revises: 3f1c2a9b7d10
"""
from alembic import op

revision = "8e4d6b2c1a05"
down_revision = "3f1c2a9b7d10"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE jobs ADD COLUMN price_cents integer NOT NULL DEFAULT 0")


def downgrade() -> None:
    op.execute("ALTER TABLE jobs DROP COLUMN price_cents")
