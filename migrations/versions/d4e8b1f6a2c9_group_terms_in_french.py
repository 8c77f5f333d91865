"""Working groups' terms of reference in French.

Revision ID: d4e8b1f6a2c9
Revises: b7d3e9a2c4f6
Create Date: 2026-11-29 23:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd4e8b1f6a2c9'
down_revision = 'b7d3e9a2c4f6'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('working_group', schema=None) as batch_op:
        batch_op.add_column(sa.Column('terms_of_reference_fr', sa.Text(), server_default='', nullable=False))


def downgrade():
    with op.batch_alter_table('working_group', schema=None) as batch_op:
        batch_op.drop_column('terms_of_reference_fr')
