"""Initial schema, with the working group's sectors seeded so a new install has them.

Revision ID: bcd2bca9b6a8
Revises: 
Create Date: 2026-11-29 08:46:13.731725

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'bcd2bca9b6a8'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=False),
    sa.Column('timezone', sa.String(length=60), nullable=False),
    sa.Column('venue_name', sa.String(length=200), nullable=False),
    sa.Column('venue_address', sa.String(length=300), nullable=False),
    sa.Column('venue_accessibility', sa.Text(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('sector_cap_percent', sa.Integer(), nullable=True),
    sa.Column('registration_opens_at', sa.DateTime(), nullable=True),
    sa.Column('registration_closes_at', sa.DateTime(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reminder_days', sa.Integer(), nullable=False),
    sa.Column('retention_days', sa.Integer(), nullable=False),
    sa.Column('needs_purged_at', sa.DateTime(), nullable=True),
    sa.Column('personal_data_purged_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event')),
    sa.UniqueConstraint('slug', name=op.f('uq_event_slug'))
    )
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_status'), ['status'], unique=False)

    op.create_table('guideline',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title_en', sa.String(length=200), nullable=False),
    sa.Column('title_fr', sa.String(length=200), nullable=False),
    sa.Column('summary_en', sa.Text(), nullable=False),
    sa.Column('summary_fr', sa.Text(), nullable=False),
    sa.Column('version', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('release_at', sa.DateTime(), nullable=True),
    sa.Column('released_at', sa.DateTime(), nullable=True),
    sa.Column('revision_of_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['revision_of_id'], ['guideline.id'], name=op.f('fk_guideline_revision_of_id_guideline'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guideline'))
    )
    with op.batch_alter_table('guideline', schema=None) as batch_op:
        batch_op.create_index('ix_guideline_due', ['release_at'], unique=False, postgresql_where=sa.text("status = 'scheduled'"), sqlite_where=sa.text("status = 'scheduled'"))
        batch_op.create_index(batch_op.f('ix_guideline_revision_of_id'), ['revision_of_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_guideline_status'), ['status'], unique=False)

    op.create_table('login_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('succeeded', sa.Boolean(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('origin', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempt'))
    )
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_attempt_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_attempt_email'), ['email'], unique=False)

    op.create_table('mailing_list',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('name_fr', sa.String(length=200), nullable=False),
    sa.Column('description_en', sa.Text(), nullable=False),
    sa.Column('description_fr', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('announce_only', sa.Boolean(), nullable=False),
    sa.Column('retention_months', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mailing_list')),
    sa.UniqueConstraint('slug', name=op.f('uq_mailing_list_slug'))
    )
    op.create_table('organizer_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organizer_account')),
    sa.UniqueConstraint('email', name=op.f('uq_organizer_account_email'))
    )
    sector = op.create_table('sector',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=40), nullable=False),
    sa.Column('name_en', sa.String(length=80), nullable=False),
    sa.Column('name_fr', sa.String(length=80), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sector')),
    sa.UniqueConstraint('slug', name=op.f('uq_sector_slug'))
    )
    # A frozen copy, not an import of portal.people.services.SECTORS: a migration must
    # replay the same way whatever the code says later.
    op.bulk_insert(sector, [
        {"slug": slug, "name_en": name_en, "name_fr": name_fr, "position": position}
        for position, (slug, name_en, name_fr) in enumerate([
            ("health-care", "Health care", "Soins de santé"),
            ("mental-health", "Mental health", "Santé mentale"),
            ("addictions", "Addictions", "Dépendances"),
            ("child-protection", "Child protection", "Protection de l'enfance"),
            ("education", "Education", "Éducation"),
            ("corrections", "Corrections", "Services correctionnels"),
            ("criminal-justice", "Criminal justice", "Justice pénale"),
            ("community-development", "Community development", "Développement communautaire"),
            ("housing", "Housing", "Logement"),
            ("police", "Police", "Police"),
            ("other", "Other", "Autre"),
        ])
    ])
    op.create_table('audit_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_label', sa.String(length=320), nullable=False),
    sa.Column('action', sa.String(length=80), nullable=False),
    sa.Column('subject', sa.String(length=120), nullable=False),
    sa.Column('origin', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['organizer_account.id'], name=op.f('fk_audit_entry_actor_id_organizer_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entry'))
    )
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entry_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entry_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entry_at'), ['at'], unique=False)

    op.create_table('event_question',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=300), nullable=False),
    sa.Column('hint', sa.String(length=500), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('choices_text', sa.Text(), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['event.id'], name=op.f('fk_event_question_event_id_event'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_question'))
    )
    with op.batch_alter_table('event_question', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_question_event_id'), ['event_id'], unique=False)

    op.create_table('guideline_download',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('guideline_id', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('sector_id', sa.Integer(), nullable=True),
    sa.Column('via', sa.String(length=10), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['guideline_id'], ['guideline.id'], name=op.f('fk_guideline_download_guideline_id_guideline'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sector_id'], ['sector.id'], name=op.f('fk_guideline_download_sector_id_sector'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guideline_download'))
    )
    with op.batch_alter_table('guideline_download', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guideline_download_guideline_id'), ['guideline_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_guideline_download_sector_id'), ['sector_id'], unique=False)

    op.create_table('guideline_edition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('guideline_id', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('stored_name', sa.String(length=100), nullable=False),
    sa.Column('original_name', sa.String(length=200), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['guideline_id'], ['guideline.id'], name=op.f('fk_guideline_edition_guideline_id_guideline'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guideline_edition')),
    sa.UniqueConstraint('guideline_id', 'language', name=op.f('uq_guideline_edition_guideline_id_language')),
    sa.UniqueConstraint('stored_name', name=op.f('uq_guideline_edition_stored_name'))
    )
    with op.batch_alter_table('guideline_edition', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guideline_edition_guideline_id'), ['guideline_id'], unique=False)

    op.create_table('list_import_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('ask_unconfirmed', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('total_rows', sa.Integer(), nullable=False),
    sa.Column('processed_rows', sa.Integer(), nullable=False),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['organizer_account.id'], name=op.f('fk_list_import_job_account_id_organizer_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['list_id'], ['mailing_list.id'], name=op.f('fk_list_import_job_list_id_mailing_list'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_list_import_job'))
    )
    with op.batch_alter_table('list_import_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_list_import_job_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_list_import_job_list_id'), ['list_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_list_import_job_status'), ['status'], unique=False)

    op.create_table('list_post',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('send_at', sa.DateTime(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('recipient_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['organizer_account.id'], name=op.f('fk_list_post_author_id_organizer_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['list_id'], ['mailing_list.id'], name=op.f('fk_list_post_list_id_mailing_list'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_list_post'))
    )
    with op.batch_alter_table('list_post', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_list_post_author_id'), ['author_id'], unique=False)
        batch_op.create_index('ix_list_post_due', ['send_at'], unique=False, postgresql_where=sa.text("status = 'scheduled'"), sqlite_where=sa.text("status = 'scheduled'"))
        batch_op.create_index(batch_op.f('ix_list_post_list_id'), ['list_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_list_post_status'), ['status'], unique=False)

    op.create_table('login_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['organizer_account.id'], name=op.f('fk_login_session_account_id_organizer_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_session')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_login_session_key_hash'))
    )
    with op.batch_alter_table('login_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_session_account_id'), ['account_id'], unique=False)

    op.create_table('person',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('organization', sa.String(length=200), nullable=False),
    sa.Column('sector_id', sa.Integer(), nullable=True),
    sa.Column('community', sa.String(length=120), nullable=False),
    sa.Column('job_title', sa.String(length=200), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('erased_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['sector_id'], ['sector.id'], name=op.f('fk_person_sector_id_sector')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person')),
    sa.UniqueConstraint('email', name=op.f('uq_person_email'))
    )
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_sector_id'), ['sector_id'], unique=False)

    op.create_table('working_group',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('name_fr', sa.String(length=200), nullable=False),
    sa.Column('mandate_en', sa.Text(), nullable=False),
    sa.Column('mandate_fr', sa.Text(), nullable=False),
    sa.Column('communities', sa.JSON(), nullable=False),
    sa.Column('terms_of_reference', sa.Text(), nullable=False),
    sa.Column('tor_version', sa.String(length=40), nullable=False),
    sa.Column('mailing_list_id', sa.Integer(), nullable=True),
    sa.Column('retention_months', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['mailing_list_id'], ['mailing_list.id'], name=op.f('fk_working_group_mailing_list_id_mailing_list'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_working_group')),
    sa.UniqueConstraint('slug', name=op.f('uq_working_group_slug'))
    )
    with op.batch_alter_table('working_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_working_group_mailing_list_id'), ['mailing_list_id'], unique=False)

    op.create_table('access_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=60), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.Column('use_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_access_token_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_access_token_token_hash'))
    )
    with op.batch_alter_table('access_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_token_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_token_purpose'), ['purpose'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_token_subject_id'), ['subject_id'], unique=False)

    op.create_table('consent_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('wording', sa.Text(), nullable=False),
    sa.Column('wording_version', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=120), nullable=False),
    sa.Column('method', sa.String(length=60), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=300), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_consent_record_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_record'))
    )
    with op.batch_alter_table('consent_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_record_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_record_purpose'), ['purpose'], unique=False)

    op.create_table('copy_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('guideline_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('accessible_format', sa.Boolean(), nullable=False),
    sa.Column('format_details', sa.String(length=300), nullable=False),
    sa.Column('list_opt_in', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(), nullable=True),
    sa.Column('notified_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['guideline_id'], ['guideline.id'], name=op.f('fk_copy_request_guideline_id_guideline'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_copy_request_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_copy_request')),
    sa.UniqueConstraint('guideline_id', 'person_id', name=op.f('uq_copy_request_guideline_id_person_id'))
    )
    with op.batch_alter_table('copy_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_copy_request_guideline_id'), ['guideline_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_copy_request_person_id'), ['person_id'], unique=False)

    op.create_table('group_chair',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['organizer_account.id'], name=op.f('fk_group_chair_account_id_organizer_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['working_group.id'], name=op.f('fk_group_chair_group_id_working_group'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_group_chair')),
    sa.UniqueConstraint('account_id', 'group_id', name=op.f('uq_group_chair_account_id_group_id'))
    )
    with op.batch_alter_table('group_chair', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_chair_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_group_chair_group_id'), ['group_id'], unique=False)

    op.create_table('group_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['working_group.id'], name=op.f('fk_group_document_group_id_working_group'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_group_document'))
    )
    with op.batch_alter_table('group_document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_document_group_id'), ['group_id'], unique=False)

    op.create_table('group_membership',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('term_start', sa.Date(), nullable=True),
    sa.Column('term_end', sa.Date(), nullable=True),
    sa.Column('term_reminder_sent_for', sa.Date(), nullable=True),
    sa.Column('why', sa.Text(), nullable=False),
    sa.Column('show_email', sa.Boolean(), nullable=False),
    sa.Column('show_organization', sa.Boolean(), nullable=False),
    sa.Column('tor_acknowledged_version', sa.String(length=40), nullable=True),
    sa.Column('tor_acknowledged_at', sa.DateTime(), nullable=True),
    sa.Column('applied_at', sa.DateTime(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('left_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['working_group.id'], name=op.f('fk_group_membership_group_id_working_group'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_group_membership_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_group_membership')),
    sa.UniqueConstraint('group_id', 'person_id', name=op.f('uq_group_membership_group_id_person_id'))
    )
    with op.batch_alter_table('group_membership', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_membership_group_id'), ['group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_group_membership_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_group_membership_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_group_membership_term_end'), ['term_end'], unique=False)

    op.create_table('outbox_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('purpose', sa.String(length=80), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('list_id', sa.Integer(), nullable=True),
    sa.Column('to_address', sa.String(length=320), nullable=False),
    sa.Column('from_address', sa.String(length=400), nullable=False),
    sa.Column('reply_to', sa.String(length=400), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('subject', sa.String(length=400), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.Column('claimed_by', sa.String(length=120), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['list_id'], ['mailing_list.id'], name=op.f('fk_outbox_message_list_id_mailing_list'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_outbox_message_person_id_person'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_message')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_outbox_message_idempotency_key')),
    sa.UniqueConstraint('message_id', name=op.f('uq_outbox_message_message_id'))
    )
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_message_due', ['next_attempt_at'], unique=False, postgresql_where=sa.text("state IN ('queued', 'retry', 'sending')"), sqlite_where=sa.text("state IN ('queued', 'retry', 'sending')"))
        batch_op.create_index(batch_op.f('ix_outbox_message_list_id'), ['list_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_message_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_message_purpose'), ['purpose'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_message_state'), ['state'], unique=False)

    op.create_table('privacy_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=False),
    sa.Column('handled_at', sa.DateTime(), nullable=True),
    sa.Column('handled_by_id', sa.Integer(), nullable=True),
    sa.Column('refusal_reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['handled_by_id'], ['organizer_account.id'], name=op.f('fk_privacy_request_handled_by_id_organizer_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_privacy_request_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_request'))
    )
    with op.batch_alter_table('privacy_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_request_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_privacy_request_state'), ['state'], unique=False)

    op.create_table('registration',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('sector_id', sa.Integer(), nullable=True),
    sa.Column('waitlist_position', sa.Integer(), nullable=True),
    sa.Column('accessibility_needs', sa.Text(), nullable=False),
    sa.Column('dietary_needs', sa.Text(), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(), nullable=True),
    sa.Column('promoted_at', sa.DateTime(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.Column('cancelled_by', sa.String(length=20), nullable=False),
    sa.Column('checked_in_at', sa.DateTime(), nullable=True),
    sa.Column('checked_in_by_id', sa.Integer(), nullable=True),
    sa.Column('reminder_sent_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['checked_in_by_id'], ['organizer_account.id'], name=op.f('fk_registration_checked_in_by_id_organizer_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['event_id'], ['event.id'], name=op.f('fk_registration_event_id_event'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_registration_person_id_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sector_id'], ['sector.id'], name=op.f('fk_registration_sector_id_sector')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registration')),
    sa.UniqueConstraint('event_id', 'waitlist_position', name='uq_registration_waitlist_ticket')
    )
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registration_event_id'), ['event_id'], unique=False)
        batch_op.create_index('ix_registration_event_status', ['event_id', 'status', 'sector_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_registration_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_registration_sector_id'), ['sector_id'], unique=False)
        batch_op.create_index('uq_registration_active_person', ['event_id', 'person_id'], unique=True, postgresql_where=sa.text("status IN ('confirmed', 'waitlisted')"), sqlite_where=sa.text("status IN ('confirmed', 'waitlisted')"))

    op.create_table('release_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('guideline_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['guideline_id'], ['guideline.id'], name=op.f('fk_release_notice_guideline_id_guideline'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_release_notice_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_release_notice')),
    sa.UniqueConstraint('guideline_id', 'person_id', name=op.f('uq_release_notice_guideline_id_person_id'))
    )
    with op.batch_alter_table('release_notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_release_notice_guideline_id'), ['guideline_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_release_notice_person_id'), ['person_id'], unique=False)

    op.create_table('subscription',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=14), nullable=False),
    sa.Column('unsubscribe_token_hash', sa.String(length=64), nullable=False),
    sa.Column('unsubscribe_salt', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=120), nullable=False),
    sa.Column('requested_at', sa.DateTime(), nullable=True),
    sa.Column('requested_wording', sa.Text(), nullable=False),
    sa.Column('requested_wording_version', sa.String(length=40), nullable=False),
    sa.Column('requested_ip', sa.String(length=64), nullable=False),
    sa.Column('requested_user_agent', sa.String(length=300), nullable=False),
    sa.Column('requested_language', sa.String(length=5), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(), nullable=True),
    sa.Column('unsubscribed_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['list_id'], ['mailing_list.id'], name=op.f('fk_subscription_list_id_mailing_list'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_subscription_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription')),
    sa.UniqueConstraint('list_id', 'person_id', name=op.f('uq_subscription_list_id_person_id')),
    sa.UniqueConstraint('unsubscribe_token_hash', name=op.f('uq_subscription_unsubscribe_token_hash'))
    )
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscription_list_id'), ['list_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subscription_person_id'), ['person_id'], unique=False)

    op.create_table('working_group_sector',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('sector_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['working_group.id'], name=op.f('fk_working_group_sector_group_id_working_group'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sector_id'], ['sector.id'], name=op.f('fk_working_group_sector_sector_id_sector'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'sector_id', name=op.f('pk_working_group_sector'))
    )
    op.create_table('outbox_attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['outbox_message.id'], name=op.f('fk_outbox_attachment_message_id_outbox_message'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_attachment'))
    )
    with op.batch_alter_table('outbox_attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_attachment_message_id'), ['message_id'], unique=False)



def downgrade():
    with op.batch_alter_table('outbox_attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_attachment_message_id'))

    op.drop_table('outbox_attachment')
    op.drop_table('working_group_sector')
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscription_person_id'))
        batch_op.drop_index(batch_op.f('ix_subscription_list_id'))

    op.drop_table('subscription')
    with op.batch_alter_table('release_notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_release_notice_person_id'))
        batch_op.drop_index(batch_op.f('ix_release_notice_guideline_id'))

    op.drop_table('release_notice')
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.drop_index('uq_registration_active_person', postgresql_where=sa.text("status IN ('confirmed', 'waitlisted')"), sqlite_where=sa.text("status IN ('confirmed', 'waitlisted')"))
        batch_op.drop_index(batch_op.f('ix_registration_sector_id'))
        batch_op.drop_index(batch_op.f('ix_registration_person_id'))
        batch_op.drop_index('ix_registration_event_status')
        batch_op.drop_index(batch_op.f('ix_registration_event_id'))

    op.drop_table('registration')
    with op.batch_alter_table('privacy_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_request_state'))
        batch_op.drop_index(batch_op.f('ix_privacy_request_person_id'))

    op.drop_table('privacy_request')
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_message_state'))
        batch_op.drop_index(batch_op.f('ix_outbox_message_purpose'))
        batch_op.drop_index(batch_op.f('ix_outbox_message_person_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_message_list_id'))
        batch_op.drop_index('ix_outbox_message_due', postgresql_where=sa.text("state IN ('queued', 'retry', 'sending')"), sqlite_where=sa.text("state IN ('queued', 'retry', 'sending')"))

    op.drop_table('outbox_message')
    with op.batch_alter_table('group_membership', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_membership_term_end'))
        batch_op.drop_index(batch_op.f('ix_group_membership_status'))
        batch_op.drop_index(batch_op.f('ix_group_membership_person_id'))
        batch_op.drop_index(batch_op.f('ix_group_membership_group_id'))

    op.drop_table('group_membership')
    with op.batch_alter_table('group_document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_document_group_id'))

    op.drop_table('group_document')
    with op.batch_alter_table('group_chair', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_chair_group_id'))
        batch_op.drop_index(batch_op.f('ix_group_chair_account_id'))

    op.drop_table('group_chair')
    with op.batch_alter_table('copy_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_copy_request_person_id'))
        batch_op.drop_index(batch_op.f('ix_copy_request_guideline_id'))

    op.drop_table('copy_request')
    with op.batch_alter_table('consent_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_record_purpose'))
        batch_op.drop_index(batch_op.f('ix_consent_record_person_id'))

    op.drop_table('consent_record')
    with op.batch_alter_table('access_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_token_subject_id'))
        batch_op.drop_index(batch_op.f('ix_access_token_purpose'))
        batch_op.drop_index(batch_op.f('ix_access_token_person_id'))

    op.drop_table('access_token')
    with op.batch_alter_table('working_group', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_working_group_mailing_list_id'))

    op.drop_table('working_group')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_sector_id'))

    op.drop_table('person')
    with op.batch_alter_table('login_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_session_account_id'))

    op.drop_table('login_session')
    with op.batch_alter_table('list_post', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_list_post_status'))
        batch_op.drop_index(batch_op.f('ix_list_post_list_id'))
        batch_op.drop_index('ix_list_post_due', postgresql_where=sa.text("status = 'scheduled'"), sqlite_where=sa.text("status = 'scheduled'"))
        batch_op.drop_index(batch_op.f('ix_list_post_author_id'))

    op.drop_table('list_post')
    with op.batch_alter_table('list_import_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_list_import_job_status'))
        batch_op.drop_index(batch_op.f('ix_list_import_job_list_id'))
        batch_op.drop_index(batch_op.f('ix_list_import_job_account_id'))

    op.drop_table('list_import_job')
    with op.batch_alter_table('guideline_edition', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guideline_edition_guideline_id'))

    op.drop_table('guideline_edition')
    with op.batch_alter_table('guideline_download', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guideline_download_sector_id'))
        batch_op.drop_index(batch_op.f('ix_guideline_download_guideline_id'))

    op.drop_table('guideline_download')
    with op.batch_alter_table('event_question', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_question_event_id'))

    op.drop_table('event_question')
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entry_at'))
        batch_op.drop_index(batch_op.f('ix_audit_entry_actor_id'))
        batch_op.drop_index(batch_op.f('ix_audit_entry_action'))

    op.drop_table('audit_entry')
    op.drop_table('sector')
    op.drop_table('organizer_account')
    op.drop_table('mailing_list')
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_attempt_email'))
        batch_op.drop_index(batch_op.f('ix_login_attempt_at'))

    op.drop_table('login_attempt')
    with op.batch_alter_table('guideline', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guideline_status'))
        batch_op.drop_index(batch_op.f('ix_guideline_revision_of_id'))
        batch_op.drop_index('ix_guideline_due', postgresql_where=sa.text("status = 'scheduled'"), sqlite_where=sa.text("status = 'scheduled'"))

    op.drop_table('guideline')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_status'))

    op.drop_table('event')
