"""badmigrate: a migration that fails half way (test fixture), on top of v2's 0002. It
alters the schema and then raises. The whole upgrade runs in one transaction and
PostgreSQL's DDL is transactional, so nothing of it stays: the database keeps the
revision it had (0001 or 0002) and the previous release keeps running on it.

Revision ID: 0003_fail
Revises: 0002_booking_note
"""
from alembic import op

revision = "0003_fail"
down_revision = "0002_booking_note"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE bookings ADD COLUMN half_done text")
    raise RuntimeError("badmigrate: this migration fails on purpose")


def downgrade() -> None:
    pass
