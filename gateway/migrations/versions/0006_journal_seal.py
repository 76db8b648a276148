"""journal tamper evidence: hash-chain columns on the journals, signed checkpoints, chain heads

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 04:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

CHAINED = ('journal_logging', 'journal_incident')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    for table in CHAINED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
            batch.add_column(sa.Column('chain_hash', sa.String(length=64), nullable=True))
        op.create_index(
            f'ix_{table}_unsealed', table, ['id'],
            postgresql_where=sa.text('seq IS NULL'), sqlite_where=sa.text('seq IS NULL'),
        )
    op.create_table(
        'journal_checkpoint',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('table_name', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('first_seq', sa.BigInteger(), nullable=False),
        sa.Column('last_seq', sa.BigInteger(), nullable=False),
        sa.Column('last_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.String(length=32), nullable=False),
        sa.Column('archive_name', sa.String(length=300), nullable=True),
        sa.Column('archive_sha256', sa.String(length=64), nullable=True),
        sa.Column('signature', sa.Text(), nullable=False),
        sa.Column('certificate', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_checkpoint')),
    )
    op.create_index(op.f('ix_journal_checkpoint_table_name'), 'journal_checkpoint', ['table_name'])
    op.create_table(
        'journal_chain_head',
        sa.Column('table_name', sa.String(length=64), nullable=False),
        sa.Column('last_seq', sa.BigInteger(), nullable=False),
        sa.Column('last_hash', sa.String(length=64), nullable=False),
        sa.Column('locked_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('table_name', name=op.f('pk_journal_chain_head')),
    )


def downgrade() -> None:
    op.drop_table('journal_chain_head')
    op.drop_index(op.f('ix_journal_checkpoint_table_name'), table_name='journal_checkpoint')
    op.drop_table('journal_checkpoint')
    for table in reversed(CHAINED):
        op.drop_index(f'ix_{table}_unsealed', table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column('chain_hash')
            batch.drop_column('seq')
