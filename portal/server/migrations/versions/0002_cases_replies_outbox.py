"""Case rotations, mailbox kinds, replies and applied outbox bundles.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("pending_rotation", sa.String(32), nullable=True))
        batch.add_column(sa.Column("rotation", sa.String(32), nullable=True))
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="report"))
    with op.batch_alter_table("envelopes") as batch:
        batch.add_column(sa.Column("seq", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "replies",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("mailbox_id", sa.String(32), sa.ForeignKey("mailboxes.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
    )
    op.create_index("ix_replies_mailbox_id", "replies", ["mailbox_id"])
    op.create_table(
        "outbox_imports",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("applied_on", sa.Date(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("outbox_imports")
    op.drop_index("ix_replies_mailbox_id", "replies")
    op.drop_table("replies")
    with op.batch_alter_table("envelopes") as batch:
        batch.drop_column("seq")
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_column("kind")
        batch.drop_column("rotation")
        batch.drop_column("pending_rotation")
