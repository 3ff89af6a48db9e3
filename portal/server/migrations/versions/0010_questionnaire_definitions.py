"""Questionnaire definitions the portal has served, for the desk.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "questionnaire_definitions",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("form", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(1024 * 1024), nullable=False),
        sa.Column("first_served", sa.Date(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("questionnaire_definitions")
