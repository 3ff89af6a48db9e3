"""Outbox checkpoints of the desk's custody log; items refused one by one.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_imports") as batch:
        batch.add_column(sa.Column("custody_n", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("custody_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("custody_sig", sa.LargeBinary(64), nullable=True))
    op.create_table(
        "refused_items",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("outbox_seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
    )
    op.create_index("ix_refused_items_outbox_seq", "refused_items", ["outbox_seq"])


def downgrade() -> None:
    op.drop_table("refused_items")
    with op.batch_alter_table("outbox_imports") as batch:
        batch.drop_column("custody_sig")
        batch.drop_column("custody_hash")
        batch.drop_column("custody_n")
