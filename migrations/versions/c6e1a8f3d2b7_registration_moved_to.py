"""A registration moved to another event names the registration it became.

Revision ID: c6e1a8f3d2b7
Revises: a3c5e7f9b2d4
Create Date: 2026-12-07 18:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c6e1a8f3d2b7'
down_revision = 'a3c5e7f9b2d4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.add_column(sa.Column('moved_to_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_registration_moved_to_id_registration'), 'registration',
                                    ['moved_to_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_registration_moved_to_id_registration'), type_='foreignkey')
        batch_op.drop_column('moved_to_id')
