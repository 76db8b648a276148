"""delivery points naming back-office adapters; pending adapter results polled as tasks

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 03:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('registry_delivery_point') as batch:
        batch.add_column(sa.Column('adapter_name', sa.String(length=50), nullable=True))
        batch.add_column(sa.Column('adapter_options', sa.JSON(), nullable=True))
        batch.alter_column('url', existing_type=sa.String(length=1000), nullable=True)
    with op.batch_alter_table('delivery_task') as batch:
        batch.add_column(sa.Column('reference', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('delivery_task') as batch:
        batch.drop_column('reference')
    with op.batch_alter_table('registry_delivery_point') as batch:
        batch.alter_column('url', existing_type=sa.String(length=1000), nullable=False)
        batch.drop_column('adapter_options')
        batch.drop_column('adapter_name')
