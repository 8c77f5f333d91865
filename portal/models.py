"""Every model, imported in one place so Alembic and the tests see the whole schema."""
from portal.auth.models import LoginAttempt, LoginSession, OrganizerAccount  # noqa: F401
from portal.core.audit import AuditEntry  # noqa: F401
from portal.core.tokens import AccessToken  # noqa: F401
from portal.lists.models import ImportJob, ListPost, MailingList, Subscription  # noqa: F401
from portal.mail.models import OutboxAttachment, OutboxMessage  # noqa: F401
from portal.people.models import ConsentRecord, Person, PrivacyRequest, Sector  # noqa: F401
from portal.groups.models import GroupChair, GroupDocument, Membership, WorkingGroup  # noqa: F401
from portal.events.models import Event, EventQuestion, Registration  # noqa: F401
from portal.guidelines.models import CopyRequest, Guideline, GuidelineDownload, GuidelineEdition, ReleaseNotice  # noqa: F401
