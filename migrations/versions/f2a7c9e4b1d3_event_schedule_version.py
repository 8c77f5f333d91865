"""Events count changes to their time and place (the calendar files' SEQUENCE).

Revision ID: f2a7c9e4b1d3
Revises: c5e8a1d4f7b2
Create Date: 2026-11-29 21:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f2a7c9e4b1d3'
down_revision = 'c5e8a1d4f7b2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('schedule_version', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_column('schedule_version')
