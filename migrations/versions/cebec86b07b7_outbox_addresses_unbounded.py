"""The outbox's addresses have no length limit: an encoded name can be far longer than 320.

A To: value is "Name <address>" with a non-ASCII name RFC 2047-encoded (base64 of its
UTF-8), so a 200-letter name of é or CJK letters made it 560 to 1,100 characters and
PostgreSQL refused the registration that queued it. From and Reply-To are the operator's
settings, stored as given.

Revision ID: cebec86b07b7
Revises: c6e1a8f3d2b7
Create Date: 2026-12-07 22:00:00

"""
from email.utils import parseaddr

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'cebec86b07b7'
down_revision = 'c6e1a8f3d2b7'
branch_labels = None
depends_on = None

#: The limits these columns had.
OLD_LENGTHS = {'to_address': 320, 'from_address': 400, 'reply_to': 400}


def upgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        for column, length in OLD_LENGTHS.items():
            batch_op.alter_column(column, existing_type=sa.String(length), type_=sa.Text(),
                                  existing_nullable=False)


def downgrade():
    # A value too long for the old column keeps its bare address (the name is what made it
    # long): still deliverable, where cutting the encoded name would not be.
    outbox = sa.table('outbox_message', sa.column('id', sa.Integer()),
                      *(sa.column(column, sa.Text()) for column in OLD_LENGTHS))
    connection = op.get_bind()
    for column, length in OLD_LENGTHS.items():
        too_long = connection.execute(
            sa.select(outbox.c.id, outbox.c[column]).where(sa.func.length(outbox.c[column]) > length)).all()
        for row_id, value in too_long:
            connection.execute(outbox.update().where(outbox.c.id == row_id)
                               .values({column: parseaddr(value)[1][:length]}))
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        for column, length in OLD_LENGTHS.items():
            batch_op.alter_column(column, existing_type=sa.Text(), type_=sa.String(length),
                                  existing_nullable=False)
