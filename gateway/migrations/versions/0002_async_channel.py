"""asynchronous channel and incident journal

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 23:39:17.842185
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('journal_incident',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('delivery_point_id', sa.Integer(), nullable=True),
    sa.Column('message_id', sa.String(length=200), nullable=True),
    sa.Column('message_received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('administrator_notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('responsible_arrived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delay_cause', sa.String(length=2000), nullable=True),
    sa.Column('measures_taken', sa.String(length=2000), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('employee_name', sa.String(length=300), nullable=True),
    sa.Column('signature', sa.String(length=300), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_incident'))
    )
    with op.batch_alter_table('journal_incident', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_journal_incident_opened_at'), ['opened_at'], unique=False)

    op.create_table('async_message',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('correlation_id', sa.String(length=200), nullable=False),
    sa.Column('service_id', sa.String(length=200), nullable=False),
    sa.Column('message_type', sa.String(length=16), nullable=False),
    sa.Column('route_id', sa.String(length=200), nullable=True),
    sa.Column('message_date', sa.String(length=64), nullable=False),
    sa.Column('sender_id', sa.String(length=200), nullable=False),
    sa.Column('recipient_id', sa.String(length=200), nullable=False),
    sa.Column('properties', sa.JSON(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('delivery_mode', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('fetched', sa.Boolean(), nullable=False),
    sa.Column('receive_status', sa.String(length=32), nullable=True),
    sa.Column('session_id', sa.String(length=40), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_async_message')),
    sa.UniqueConstraint('message_id', name=op.f('uq_async_message_message_id'))
    )
    with op.batch_alter_table('async_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_async_message_correlation_id'), ['correlation_id'], unique=False)
        batch_op.create_index('ix_async_message_pull', ['recipient_id', 'service_id', 'delivery_mode', 'fetched', 'id'], unique=False)

    op.create_table('delivery_point_state',
    sa.Column('delivery_point_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('recent_calls', sa.JSON(), nullable=False),
    sa.Column('recent_failures', sa.JSON(), nullable=False),
    sa.Column('switched_off', sa.Boolean(), nullable=False),
    sa.Column('switched_off_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('probe_after', sa.DateTime(timezone=True), nullable=True),
    sa.Column('incident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.PrimaryKeyConstraint('delivery_point_id', name=op.f('pk_delivery_point_state'))
    )
    op.create_table('delivery_task',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('delivery_point_id', sa.Integer(), nullable=False),
    sa.Column('notified_state', sa.String(length=20), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['async_message.message_id'], name=op.f('fk_delivery_task_message_id')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_task'))
    )
    with op.batch_alter_table('delivery_task', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_task_delivery_point_id'), ['delivery_point_id'], unique=False)
        batch_op.create_index('ix_delivery_task_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_task_message_id'), ['message_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('delivery_task', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_task_message_id'))
        batch_op.drop_index('ix_delivery_task_due')
        batch_op.drop_index(batch_op.f('ix_delivery_task_delivery_point_id'))

    op.drop_table('delivery_task')
    op.drop_table('delivery_point_state')
    with op.batch_alter_table('async_message', schema=None) as batch_op:
        batch_op.drop_index('ix_async_message_pull')
        batch_op.drop_index(batch_op.f('ix_async_message_correlation_id'))

    op.drop_table('async_message')
    with op.batch_alter_table('journal_incident', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_journal_incident_opened_at'))

    op.drop_table('journal_incident')
