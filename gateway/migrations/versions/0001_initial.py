"""initial registry and logging journal

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 23:37:18.545519
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('registry_delivery_point',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('url', sa.String(length=1000), nullable=False),
    sa.Column('call_mode', sa.Integer(), nullable=False),
    sa.Column('throttling_enabled', sa.Boolean(), nullable=False),
    sa.Column('throttling_timeout_sec', sa.Integer(), nullable=True),
    sa.Column('throttling_request_count', sa.Integer(), nullable=True),
    sa.Column('retry_count', sa.Integer(), nullable=False),
    sa.Column('async_call_timeout_sec', sa.Integer(), nullable=True),
    sa.Column('max_errors', sa.Integer(), nullable=True),
    sa.Column('max_error_interval_sec', sa.Integer(), nullable=True),
    sa.Column('security_mode', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_delivery_point'))
    )
    op.create_table('registry_organisation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bin', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('short_name', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_organisation')),
    sa.UniqueConstraint('bin', name=op.f('uq_registry_organisation_bin'))
    )
    op.create_table('registry_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_version'))
    )
    op.create_table('registry_information_system',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sender_id', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=500), nullable=True),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('short_name', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('availability_mode', sa.String(length=20), nullable=True),
    sa.Column('response_delivery_point_id', sa.Integer(), nullable=True),
    sa.Column('operator_name', sa.String(length=500), nullable=True),
    sa.Column('operator_short_name', sa.String(length=200), nullable=True),
    sa.Column('operations_unit', sa.String(length=500), nullable=True),
    sa.Column('head_of_operations_unit', sa.JSON(), nullable=True),
    sa.Column('responsible_official', sa.JSON(), nullable=True),
    sa.Column('developer_contact', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'], ['registry_organisation.id'], name=op.f('fk_registry_information_system_organisation_id')),
    sa.ForeignKeyConstraint(['response_delivery_point_id'], ['registry_delivery_point.id'], name=op.f('fk_registry_information_system_response_delivery_point_id')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_information_system')),
    sa.UniqueConstraint('sender_id', name=op.f('uq_registry_information_system_sender_id'))
    )
    op.create_table('registry_service',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=1000), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('owner_is_id', sa.Integer(), nullable=False),
    sa.Column('interaction_mode', sa.String(length=16), nullable=False),
    sa.Column('wsdl_address', sa.String(length=1000), nullable=True),
    sa.Column('routing_enabled', sa.Boolean(), nullable=False),
    sa.Column('default_delivery_point_id', sa.Integer(), nullable=True),
    sa.Column('send_mode', sa.String(length=8), nullable=True),
    sa.Column('status_change_notification', sa.Boolean(), nullable=False),
    sa.Column('delivery_notification', sa.Boolean(), nullable=False),
    sa.Column('security_mode', sa.Integer(), nullable=False),
    sa.Column('stage', sa.Integer(), nullable=True),
    sa.Column('registry_stage', sa.String(length=16), nullable=False),
    sa.Column('test_service_addresses', sa.JSON(), nullable=True),
    sa.Column('test_requests_and_responses', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['default_delivery_point_id'], ['registry_delivery_point.id'], name=op.f('fk_registry_service_default_delivery_point_id')),
    sa.ForeignKeyConstraint(['owner_is_id'], ['registry_information_system.id'], name=op.f('fk_registry_service_owner_is_id')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_service')),
    sa.UniqueConstraint('key', name=op.f('uq_registry_service_key'))
    )
    op.create_table('registry_message_parameter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('message', sa.String(length=16), nullable=False),
    sa.Column('parameter_name', sa.String(length=500), nullable=False),
    sa.Column('parameter_format', sa.String(length=200), nullable=False),
    sa.Column('field', sa.String(length=200), nullable=False),
    sa.Column('mandatory', sa.Boolean(), nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['service_id'], ['registry_service.id'], name=op.f('fk_registry_message_parameter_service_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_message_parameter'))
    )
    op.create_table('registry_route',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('delivery_point_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['delivery_point_id'], ['registry_delivery_point.id'], name=op.f('fk_registry_route_delivery_point_id')),
    sa.ForeignKeyConstraint(['service_id'], ['registry_service.id'], name=op.f('fk_registry_route_service_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_route')),
    sa.UniqueConstraint('service_id', 'name', name=op.f('uq_registry_route_service_id'))
    )
    op.create_table('registry_service_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('reference', sa.String(length=1000), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['registry_service.id'], name=op.f('fk_registry_service_document_service_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_service_document'))
    )
    op.create_table('registry_service_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('consumer_is_id', sa.Integer(), nullable=False),
    sa.Column('ordinal', sa.Integer(), nullable=False),
    sa.Column('delivery_address', sa.String(length=1000), nullable=True),
    sa.Column('publication_basis', sa.String(length=1000), nullable=True),
    sa.Column('connection_basis', sa.String(length=1000), nullable=True),
    sa.Column('owner_permission', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['consumer_is_id'], ['registry_information_system.id'], name=op.f('fk_registry_service_user_consumer_is_id')),
    sa.ForeignKeyConstraint(['service_id'], ['registry_service.id'], name=op.f('fk_registry_service_user_service_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_service_user')),
    sa.UniqueConstraint('service_id', 'consumer_is_id', name=op.f('uq_registry_service_user_service_id'))
    )
    op.create_table('journal_logging',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=True),
    sa.Column('correlation_id', sa.String(length=200), nullable=True),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message_type', sa.String(length=16), nullable=True),
    sa.Column('sender', sa.String(length=200), nullable=True),
    sa.Column('recipient', sa.String(length=200), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('service_id', sa.String(length=200), nullable=True),
    sa.Column('route_id', sa.String(length=200), nullable=True),
    sa.Column('session_id', sa.String(length=40), nullable=True),
    sa.Column('error_code', sa.String(length=16), nullable=True),
    sa.Column('duration_ms', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_logging'))
    )
    with op.batch_alter_table('journal_logging', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_journal_logging_correlation_id'), ['correlation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_logging_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_logging_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_logging_recipient'), ['recipient'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_logging_sender'), ['sender'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_logging_service_id'), ['service_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_logging_session_id'), ['session_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('journal_logging', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_journal_logging_session_id'))
        batch_op.drop_index(batch_op.f('ix_journal_logging_service_id'))
        batch_op.drop_index(batch_op.f('ix_journal_logging_sender'))
        batch_op.drop_index(batch_op.f('ix_journal_logging_recipient'))
        batch_op.drop_index(batch_op.f('ix_journal_logging_received_at'))
        batch_op.drop_index(batch_op.f('ix_journal_logging_message_id'))
        batch_op.drop_index(batch_op.f('ix_journal_logging_correlation_id'))

    op.drop_table('journal_logging')
    op.drop_table('registry_service_user')
    op.drop_table('registry_service_document')
    op.drop_table('registry_route')
    op.drop_table('registry_message_parameter')
    op.drop_table('registry_service')
    op.drop_table('registry_information_system')
    op.drop_table('registry_version')
    op.drop_table('registry_organisation')
    op.drop_table('registry_delivery_point')
