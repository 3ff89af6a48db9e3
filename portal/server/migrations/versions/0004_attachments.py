"""Evidence file uploads.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("part_size", sa.Integer(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("mailbox_id", sa.String(32), sa.ForeignKey("mailboxes.id"), nullable=True),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("acked_on", sa.Date(), nullable=True),
    )
    op.create_index("ix_attachments_owner", "attachments", ["owner"])
    op.create_index("ix_attachments_mailbox_id", "attachments", ["mailbox_id"])


def downgrade() -> None:
    op.drop_table("attachments")
