"""Events have their own organizers: only they (and admins) see the attendee list and needs.

Every organizer account already there is made an organizer of every event already there,
so no one loses access to an event they were running; admins can then narrow each team.

Revision ID: e4a7c2d91f05
Revises: 7c4d2e9a1b3f
Create Date: 2026-11-29 17:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e4a7c2d91f05'
down_revision = '7c4d2e9a1b3f'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('event_organizer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['organizer_account.id'], name=op.f('fk_event_organizer_account_id_organizer_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['event.id'], name=op.f('fk_event_organizer_event_id_event'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_organizer')),
    sa.UniqueConstraint('event_id', 'account_id', name=op.f('uq_event_organizer_event_id_account_id'))
    )
    with op.batch_alter_table('event_organizer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_organizer_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_event_organizer_event_id'), ['event_id'], unique=False)
    op.execute(
        "INSERT INTO event_organizer (event_id, account_id, created_at) "
        "SELECT event.id, organizer_account.id, event.created_at "
        "FROM event CROSS JOIN organizer_account WHERE organizer_account.role = 'organizer'"
    )


def downgrade():
    with op.batch_alter_table('event_organizer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_organizer_event_id'))
        batch_op.drop_index(batch_op.f('ix_event_organizer_account_id'))
    op.drop_table('event_organizer')
