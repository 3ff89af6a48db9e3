"""Spent proof-of-work challenges and forms: their digests, in digest order.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spent_tokens",
        sa.Column("digest", sa.LargeBinary(32), primary_key=True),
        sa.Column("hour", sa.Integer(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_spent_tokens_hour", "spent_tokens", ["hour"])


def downgrade() -> None:
    op.drop_table("spent_tokens")
