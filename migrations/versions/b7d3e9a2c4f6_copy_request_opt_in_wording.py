"""Copy requests keep the opt-in wording the page showed, and its language.

Revision ID: b7d3e9a2c4f6
Revises: f2a7c9e4b1d3
Create Date: 2026-11-29 22:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7d3e9a2c4f6'
down_revision = 'f2a7c9e4b1d3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('copy_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opt_in_wording', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('opt_in_language', sa.String(length=5), server_default='', nullable=False))


def downgrade():
    with op.batch_alter_table('copy_request', schema=None) as batch_op:
        batch_op.drop_column('opt_in_language')
        batch_op.drop_column('opt_in_wording')
