"""offers.category (release v2): additive, with a default, so v1 still inserts

Revision ID: 0002_offer_category
Revises: 0001_offers_polls
"""
from alembic import op

revision = "0002_offer_category"
down_revision = "0001_offers_polls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE offers ADD COLUMN category text NOT NULL DEFAULT 'other'")


def downgrade() -> None:
    op.execute("ALTER TABLE offers DROP COLUMN category")
