"""Pending list subscriptions keep the language asked for, applied on confirmation.

Revision ID: e9b2d4a6c8f1
Revises: d4e8b1f6a2c9
Create Date: 2026-11-29 23:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e9b2d4a6c8f1'
down_revision = 'd4e8b1f6a2c9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requested_message_language', sa.String(length=5), server_default='',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_column('requested_message_language')
