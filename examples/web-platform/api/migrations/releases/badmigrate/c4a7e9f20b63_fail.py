"""A migration that fails (release badmigrate): it adds a column, then raises, so the
whole upgrade's transaction is rolled back and `alembic upgrade head` exits 1.

Revision ID: c4a7e9f20b63
Revises: 8e4d6b2c1a05
"""
from alembic import op

revision = "c4a7e9f20b63"
down_revision = "8e4d6b2c1a05"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE jobs ADD COLUMN doomed integer")
    raise RuntimeError("badmigrate: this migration fails on purpose (test fixture)")


def downgrade() -> None:
    pass
