"""bookings table; at most one active booking per client (all releases)

Revision ID: 0001_bookings
Revises:
"""
from alembic import op

revision = "0001_bookings"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE bookings (
            id            bigserial PRIMARY KEY,
            client_id     text        NOT NULL,
            slot          timestamptz NOT NULL,
            status        text        NOT NULL DEFAULT 'active'
                          CHECK (status IN ('active', 'cancelled')),
            created_at    timestamptz NOT NULL DEFAULT now(),
            cancelled_at  timestamptz,
            cancelled_by  text,
            cancel_reason text
        )
    """)
    op.execute("CREATE INDEX ix_bookings_client ON bookings (client_id)")
    # The one-active-booking rule, race-free: a second active row fails the insert.
    op.execute("CREATE UNIQUE INDEX uq_bookings_one_active ON bookings (client_id) "
               "WHERE status = 'active'")


def downgrade() -> None:
    op.execute("DROP TABLE bookings")
