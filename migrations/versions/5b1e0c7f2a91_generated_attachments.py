"""Outbox attachments drawn when sent (a check-in QR code is stored as its text).

Revision ID: 5b1e0c7f2a91
Revises: bcd2bca9b6a8
Create Date: 2026-11-29 14:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b1e0c7f2a91'
down_revision = 'bcd2bca9b6a8'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_attachment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('generated', sa.String(length=20), server_default='', nullable=False))


def downgrade():
    # Rows still holding a QR code's text would go out as that text: draw them first.
    connection = op.get_bind()
    table = sa.table('outbox_attachment', sa.column('id', sa.Integer), sa.column('content', sa.LargeBinary),
                     sa.column('generated', sa.String))
    from portal.mail.attachments import attachment_file

    for row in connection.execute(sa.select(table).where(table.c.generated != '')).all():
        connection.execute(table.update().where(table.c.id == row.id)
                           .values(content=attachment_file(row.generated, row.content)))
    with op.batch_alter_table('outbox_attachment', schema=None) as batch_op:
        batch_op.drop_column('generated')
