"""Events count changes to their questions (a registration checked against an older form is refused).

Revision ID: 7c4d2e9a1b3f
Revises: 5b1e0c7f2a91
Create Date: 2026-11-29 16:05:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c4d2e9a1b3f'
down_revision = '5b1e0c7f2a91'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('questions_version', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_column('questions_version')
