"""A migration that fails (release badmigrate): it adds a column, then raises; the whole
upgrade is one transaction, so nothing stays and `alembic upgrade head` exits 1.

Revision ID: 0003_fail
Revises: 0002_offer_category
"""
from alembic import op

revision = "0003_fail"
down_revision = "0002_offer_category"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE offers ADD COLUMN doomed integer")
    raise RuntimeError("badmigrate: this migration fails on purpose (test fixture)")


def downgrade() -> None:
    pass
