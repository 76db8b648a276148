"""administration: admin API tokens, audit log, IS interaction registration journal

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-24 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0005'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('admin_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_token')),
    sa.UniqueConstraint('name', name=op.f('uq_admin_token_name')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_admin_token_token_hash'))
    )
    op.create_table('journal_audit',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('operation', sa.String(length=32), nullable=False),
    sa.Column('entity', sa.String(length=40), nullable=False),
    sa.Column('entity_key', sa.String(length=300), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_audit'))
    )
    op.create_index(op.f('ix_journal_audit_at'), 'journal_audit', ['at'], unique=False)
    op.create_index(op.f('ix_journal_audit_actor'), 'journal_audit', ['actor'], unique=False)
    op.create_index(op.f('ix_journal_audit_entity_key'), 'journal_audit', ['entity_key'], unique=False)
    op.create_table('journal_registration',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('owner_organisation', sa.String(length=500), nullable=False),
    sa.Column('owner_information_system', sa.String(length=500), nullable=False),
    sa.Column('service', sa.String(length=200), nullable=False),
    sa.Column('service_name', sa.String(length=1000), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('user_organisation', sa.String(length=500), nullable=True),
    sa.Column('user_information_system', sa.String(length=500), nullable=True),
    sa.Column('user_sender_id', sa.String(length=200), nullable=True),
    sa.Column('publication_basis', sa.String(length=1000), nullable=True),
    sa.Column('connection_basis', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_registration'))
    )
    op.create_index(op.f('ix_journal_registration_recorded_at'), 'journal_registration', ['recorded_at'], unique=False)
    op.create_index(op.f('ix_journal_registration_service'), 'journal_registration', ['service'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_journal_registration_service'), table_name='journal_registration')
    op.drop_index(op.f('ix_journal_registration_recorded_at'), table_name='journal_registration')
    op.drop_table('journal_registration')
    op.drop_index(op.f('ix_journal_audit_entity_key'), table_name='journal_audit')
    op.drop_index(op.f('ix_journal_audit_actor'), table_name='journal_audit')
    op.drop_index(op.f('ix_journal_audit_at'), table_name='journal_audit')
    op.drop_table('journal_audit')
    op.drop_table('admin_token')
