"""maintenance mode: the one-row switch shared by every gateway process

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-24 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        'gateway_maintenance',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('reason', sa.String(length=1000), nullable=True),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('changed_by', sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_gateway_maintenance')),
    )
    # The row exists from the start, so switching is a plain UPDATE and reading never finds it missing.
    op.bulk_insert(table, [{'id': 1, 'enabled': False}])


def downgrade() -> None:
    op.drop_table('gateway_maintenance')
