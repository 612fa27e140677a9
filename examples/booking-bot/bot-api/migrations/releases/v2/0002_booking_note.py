"""v2: optional note on a booking (additive: v1 keeps working on this schema)

Revision ID: 0002_booking_note
Revises: 0001_bookings
"""
from alembic import op

revision = "0002_booking_note"
down_revision = "0001_bookings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE bookings ADD COLUMN note text")


def downgrade() -> None:
    op.execute("ALTER TABLE bookings DROP COLUMN note")
