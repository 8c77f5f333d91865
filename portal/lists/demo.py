"""Demo lists: two public lists with a few consenting subscribers and one sent post."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.core.clock import now
from portal.extensions import db
from portal.lists.models import ListKind, ListPost, MailingList, PostStatus, SubscriptionStatus
from portal.people.models import ConsentKind
from portal.people.services import get_or_create_person, record_consent

DEMO_LISTS = [
    ("symposium-announcements", "Symposium announcements", "Annonces du symposium",
     "Dates, programme and registration for the annual symposium. About six messages a year.",
     "Dates, programme et inscription au symposium annuel. Environ six messages par an."),
    ("guideline-releases", "Guideline releases", "Publication des lignes directrices",
     "A notice when a new or revised guideline is released.",
     "Un avis lorsqu'une ligne directrice nouvelle ou révisée est publiée."),
]

DEMO_SUBSCRIBERS = [
    ("amelie.tremblay@example.ca", "Amélie Tremblay", "fr"),
    ("jordan.whitebird@example.ca", "Jordan Whitebird", "en"),
    ("priya.natarajan@example.ca", "Priya Natarajan", "en"),
]


def seed_demo() -> None:
    """Create the demo lists, subscribers (with consent rows) and a sent post, once."""
    from portal.lists.services import _new_subscription

    for slug, name_en, name_fr, description_en, description_fr in DEMO_LISTS:
        mailing_list = db.session.execute(select(MailingList).where(MailingList.slug == slug)).scalar_one_or_none()
        if mailing_list is not None:
            continue
        mailing_list = MailingList(slug=slug, name_en=name_en, name_fr=name_fr, description_en=description_en,
                                   description_fr=description_fr, kind=ListKind.PUBLIC.value, announce_only=True)
        db.session.add(mailing_list)
        db.session.flush()
        for email, name, language in DEMO_SUBSCRIBERS:
            person = get_or_create_person(email, name=name, language=language)
            db.session.flush()
            subscription = _new_subscription(mailing_list, person, SubscriptionStatus.ACTIVE, "lists.subscribe-form")
            subscription.confirmed_at = now() - timedelta(days=30)
            record_consent(
                person, purpose=mailing_list.consent_purpose, kind=ConsentKind.EXPRESS,
                wording=f"Yes, send me “{mailing_list.name(language)}” emails. I can unsubscribe at any time.",
                wording_version="lists.subscribe.v1", source="lists.subscribe-form", method="double opt-in",
                ip="192.0.2.10", user_agent="demo", language=language, at=now() - timedelta(days=30),
            )
        if slug == "symposium-announcements":
            db.session.add(ListPost(
                list_id=mailing_list.id, subject="Save the date: 2027 Community Safety Symposium",
                body=("The 2027 symposium will be held in **Sudbury** on May 12–13.\n\n"
                      "- Registration opens in February\n- Sessions in English and French\n\n"
                      "Questions? Write to the organizing committee."),
                status=PostStatus.SENT.value, sent_at=now() - timedelta(days=7),
                recipient_count=len(DEMO_SUBSCRIBERS),
            ))
    db.session.flush()
