"""delivery points: tlsTrustedCertificates, the CAs a point's HTTPS server must chain to

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 04:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing points keep the gateway's provider trust: an empty list.
    with op.batch_alter_table('registry_delivery_point') as batch:
        batch.add_column(sa.Column('tls_trusted_certificates', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('registry_delivery_point') as batch:
        batch.drop_column('tls_trusted_certificates')
