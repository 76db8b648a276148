"""registered certificates

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 01:02:53.550778
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('registry_certificate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('information_system_id', sa.Integer(), nullable=False),
    sa.Column('pem', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['information_system_id'], ['registry_information_system.id'], name=op.f('fk_registry_certificate_information_system_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_certificate'))
    )


def downgrade() -> None:
    op.drop_table('registry_certificate')
