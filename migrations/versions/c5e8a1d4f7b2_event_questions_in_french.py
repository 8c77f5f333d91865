"""Event questions carry their label, help text and options in French too.

Revision ID: c5e8a1d4f7b2
Revises: a9d3f6b2c8e1
Create Date: 2026-11-29 18:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c5e8a1d4f7b2'
down_revision = 'a9d3f6b2c8e1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('event_question', schema=None) as batch_op:
        batch_op.add_column(sa.Column('label_fr', sa.String(length=300), server_default='', nullable=False))
        batch_op.add_column(sa.Column('hint_fr', sa.String(length=500), server_default='', nullable=False))
        batch_op.add_column(sa.Column('choices_fr_text', sa.Text(), server_default='', nullable=False))


def downgrade():
    with op.batch_alter_table('event_question', schema=None) as batch_op:
        batch_op.drop_column('choices_fr_text')
        batch_op.drop_column('hint_fr')
        batch_op.drop_column('label_fr')
