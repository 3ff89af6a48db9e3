"""Mailboxes and envelopes.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("index", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("wrapped_key", sa.LargeBinary(128), nullable=False),
        sa.Column("pending_index", sa.LargeBinary(32), nullable=True, unique=True),
        sa.Column("pending_wrapped_key", sa.LargeBinary(128), nullable=True),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("active_on", sa.Date(), nullable=False),
    )
    op.create_table(
        "envelopes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("mailbox_id", sa.String(32), sa.ForeignKey("mailboxes.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sealed_by", sa.String(16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("acked_on", sa.Date(), nullable=True),
    )
    op.create_index("ix_envelopes_mailbox_id", "envelopes", ["mailbox_id"])


def downgrade() -> None:
    op.drop_index("ix_envelopes_mailbox_id", "envelopes")
    op.drop_table("envelopes")
    op.drop_table("mailboxes")
