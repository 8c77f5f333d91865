"""Events carry their title, summary, description and venue notes in French too.

Revision ID: a9d3f6b2c8e1
Revises: e4a7c2d91f05
Create Date: 2026-11-29 18:35:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a9d3f6b2c8e1'
down_revision = 'e4a7c2d91f05'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('title_fr', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('summary_fr', sa.String(length=500), server_default='', nullable=False))
        batch_op.add_column(sa.Column('description_fr', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('venue_accessibility_fr', sa.Text(), server_default='', nullable=False))


def downgrade():
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_column('venue_accessibility_fr')
        batch_op.drop_column('description_fr')
        batch_op.drop_column('summary_fr')
        batch_op.drop_column('title_fr')
