"""The desk's published public figures, for /transparency.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "published_figures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("made_on", sa.Date(), nullable=False),
        sa.Column("document", sa.String(20_000), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("published_figures")
