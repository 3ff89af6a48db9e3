"""Envelopes keep their ciphertext in their row: a report is one transaction and
one fsync, not a blob file's two more. Older envelopes keep theirs in the blob store.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("envelopes") as batch:
        batch.add_column(sa.Column("document", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    kept = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM envelopes WHERE document IS NOT NULL")
    )
    if kept:
        raise RuntimeError(f"{kept} envelopes keep their ciphertext here: downgrading loses it")
    with op.batch_alter_table("envelopes") as batch:
        batch.drop_column("document")
