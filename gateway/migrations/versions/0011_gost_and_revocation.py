"""delivery points: signatureAlgorithm (RSA or GOST); services: revocationFailOpen

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows get what the registry file assumes when the keys are absent.
    with op.batch_alter_table('registry_delivery_point') as batch:
        batch.add_column(sa.Column('signature_algorithm', sa.String(8), nullable=False, server_default='RSA'))
    with op.batch_alter_table('registry_service') as batch:
        batch.add_column(sa.Column('revocation_fail_open', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('registry_service') as batch:
        batch.drop_column('revocation_fail_open')
    with op.batch_alter_table('registry_delivery_point') as batch:
        batch.drop_column('signature_algorithm')
