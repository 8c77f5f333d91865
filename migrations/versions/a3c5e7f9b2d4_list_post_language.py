"""List posts say which language they are written in.

Revision ID: a3c5e7f9b2d4
Revises: e9b2d4a6c8f1
Create Date: 2026-12-07 15:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a3c5e7f9b2d4'
down_revision = 'e9b2d4a6c8f1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('list_post', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=2), server_default='en', nullable=False))


def downgrade():
    with op.batch_alter_table('list_post', schema=None) as batch_op:
        batch_op.drop_column('language')
