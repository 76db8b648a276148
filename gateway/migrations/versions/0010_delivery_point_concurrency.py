"""delivery points: maxConcurrentCalls, the bulkhead of calls in flight per gateway process

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing points get the default the registry file assumes when the key is absent.
    with op.batch_alter_table('registry_delivery_point') as batch:
        batch.add_column(sa.Column('max_concurrent_calls', sa.Integer(), nullable=False, server_default='8'))


def downgrade() -> None:
    with op.batch_alter_table('registry_delivery_point') as batch:
        batch.drop_column('max_concurrent_calls')
