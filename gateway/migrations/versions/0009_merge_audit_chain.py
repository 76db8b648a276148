"""merge the administration branches (seal, maintenance, admin); the audit log and registration journal join the
hash chain

Revision ID: 0009
Revises: 0006, 0007, 0008
Create Date: 2026-11-23 02:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = ('0006', '0007', '0008')
branch_labels = None
depends_on = None

CHAINED = ('journal_audit', 'journal_registration')


def upgrade() -> None:
    for table in CHAINED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
            batch.add_column(sa.Column('chain_hash', sa.String(length=64), nullable=True))
        op.create_index(
            f'ix_{table}_unsealed', table, ['id'],
            postgresql_where=sa.text('seq IS NULL'), sqlite_where=sa.text('seq IS NULL'),
        )


def downgrade() -> None:
    for table in CHAINED:
        op.drop_index(f'ix_{table}_unsealed', table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column('chain_hash')
            batch.drop_column('seq')
