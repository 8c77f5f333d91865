"""Retention: with the clock moved past each period, exactly what is due goes, once."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from portal.auth.models import LoginAttempt
from portal.core import clock
from portal.core.tokens import AccessToken, issue_token
from portal.extensions import db
from tests.groups.conftest import confirmed_application
from portal.lists.models import MailingList, Subscription
from portal.people.jobs import purge_expired_personal_data, retention_modules
from portal.people.models import ConsentKind, Person
from portal.people.retention import purge_due
from portal.people.services import record_consent
from tests.conftest import counted_statements
from tests.retention import purge_at

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def _seed(app, make) -> dict[str, int]:
    from portal.guidelines.models import CopyRequest, Guideline

    clock.set_now(T0)
    ids = {}
    for key in ("withdrawn", "live", "implied", "subscriber", "pending", "confirmed"):
        ids[key] = make.person(f"{key}@example.ca", name=f"{key.title()} Person").id
    with app.app_context():
        person = lambda key: db.session.get(Person, ids[key])  # noqa: E731
        record_consent(person("withdrawn"), purpose="list:news", kind=ConsentKind.EXPRESS)
        record_consent(person("withdrawn"), purpose="list:news", kind=ConsentKind.WITHDRAWN, at=T0 + timedelta(days=1))
        record_consent(person("live"), purpose="list:news", kind=ConsentKind.EXPRESS)
        record_consent(person("implied"), purpose="events.promotion", kind=ConsentKind.IMPLIED,
                       implied_from="transaction")
        record_consent(person("subscriber"), purpose="list:news", kind=ConsentKind.WITHDRAWN)
        news = MailingList(slug="news", name_en="News")
        guideline = Guideline(title_en="Situation tables")
        db.session.add_all([news, guideline])
        db.session.flush()
        db.session.add_all([
            Subscription(list_id=news.id, person_id=ids["subscriber"], status="unsubscribed",
                         unsubscribe_token_hash="a" * 64),
            Subscription(list_id=news.id, person_id=ids["pending"], status="pending",
                         unsubscribe_token_hash="b" * 64),
            Subscription(list_id=news.id, person_id=ids["confirmed"], status="active",
                         unsubscribe_token_hash="c" * 64),
            CopyRequest(guideline_id=guideline.id, person_id=ids["pending"], status="pending"),
            CopyRequest(guideline_id=guideline.id, person_id=ids["confirmed"], status="confirmed"),
            LoginAttempt(email="organizer@example.ca", succeeded=True, at=T0, origin="10.0.0.1"),
        ])
        issue_token("events.manage", person_id=ids["confirmed"], valid_for=timedelta(days=7))
        issue_token("lists.unsubscribe", person_id=ids["confirmed"], valid_for=timedelta(days=400))
        db.session.commit()
    return ids


def _state(app) -> dict[str, object]:
    from portal.guidelines.models import CopyRequest

    with app.app_context():
        count = lambda model: db.session.execute(select(func.count()).select_from(model)).scalar_one()  # noqa: E731
        erased = db.session.execute(
            select(Person.email).where(Person.erased_at.is_not(None)).order_by(Person.id)).scalars().all()
        return {
            "subscriptions": sorted(db.session.execute(select(Subscription.status)).scalars()),
            "copy_requests": sorted(db.session.execute(select(CopyRequest.status)).scalars()),
            "tokens": count(AccessToken),
            "login_attempts": count(LoginAttempt),
            "erased": len(erased),
        }


def _purge(app, at: datetime) -> int:
    return purge_at(app, purge_due, at)


def test_each_rule_removes_exactly_what_is_due_and_nothing_more(app, make):
    ids = _seed(app, make)
    before = _state(app)
    assert before == {"subscriptions": ["active", "pending", "unsubscribed"],
                      "copy_requests": ["confirmed", "pending"], "tokens": 2, "login_attempts": 1, "erased": 0}

    assert _purge(app, T0 + timedelta(days=29)) == 0
    assert _state(app) == before

    # 30 days: unconfirmed subscription and copy request; 37 days: the link expired 30 days ago.
    assert _purge(app, T0 + timedelta(days=38)) == 3
    after_links = {**before, "subscriptions": ["active", "unsubscribed"], "copy_requests": ["confirmed"], "tokens": 1}
    assert _state(app) == after_links
    assert _purge(app, T0 + timedelta(days=38)) == 0

    assert _purge(app, T0 + timedelta(days=366)) == 1
    assert _state(app) == {**after_links, "login_attempts": 0}
    # The 400-day link, 30 days after it expired.
    assert _purge(app, T0 + timedelta(days=429)) == 0
    assert _purge(app, T0 + timedelta(days=431)) == 1
    assert _state(app) == {**after_links, "login_attempts": 0, "tokens": 0}

    # 24 months after they came, the person whose unconfirmed requests were purged has no
    # record left: erased. A day later, the one known only from a withdrawn consent too.
    assert _purge(app, T0 + timedelta(days=730, minutes=1)) == 1
    with app.app_context():
        assert db.session.get(Person, ids["pending"]).erased_at is not None
        assert db.session.get(Person, ids["withdrawn"]).erased_at is None
    assert _purge(app, T0 + timedelta(days=1 + 730, minutes=1)) == 1
    with app.app_context():
        assert db.session.get(Person, ids["withdrawn"]).erased_at is not None
        # The live consenter, the lapsed-but-recent implied one and the list members stay.
        for key in ("live", "implied", "subscriber", "confirmed"):
            assert db.session.get(Person, ids[key]).erased_at is None, key
    assert _purge(app, T0 + timedelta(days=1 + 730, minutes=1)) == 0

    # Implied consent lapsed at 730 days; 24 months later its holder goes too.
    assert _purge(app, T0 + timedelta(days=1461)) == 1
    with app.app_context():
        assert db.session.get(Person, ids["implied"]).erased_at is not None
        assert db.session.get(Person, ids["live"]).erased_at is None


def test_the_purge_job_runs_every_area_and_twice_changes_nothing(app, make):
    _seed(app, make)
    areas = [area for area, _module in retention_modules()]
    assert "people" in areas
    clock.set_now(T0 + timedelta(days=400))
    with app.app_context():
        first = purge_expired_personal_data()
    assert first >= 4
    state = _state(app)
    assert state["tokens"] == 1 and state["login_attempts"] == 0 and state["subscriptions"] == ["active", "unsubscribed"]
    with app.app_context():
        assert purge_expired_personal_data() == 0
    assert _state(app) == state


def test_organizers_see_what_will_be_purged_when(app, client, auth, organizer, make):
    _seed(app, make)
    clock.set_now(T0 + timedelta(days=10))
    auth.login(organizer)
    page = client.get("/admin/privacy/retention")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Subscriptions and copy requests never confirmed are deleted." in html
    # Both unconfirmed requests fall due on the same day, 30 days after they were asked for.
    assert "Feb 4, 2026: 2" in html
    assert "Feb 11, 2026: 1" in html  # the 7-day link, 30 days after it expired


def test_a_registrant_detached_by_their_event_is_erased_24_months_after_they_came(app, make):
    from portal.events.models import Event, Registration

    clock.set_now(T0)
    person = make.person("attendee@example.ca", name="Ada Attendee", organization="Sudbury Police")
    with app.app_context():
        event = Event(slug="symposium", title="Symposium", starts_at=T0 + timedelta(days=10),
                      ends_at=T0 + timedelta(days=11), retention_days=365)
        db.session.add(event)
        db.session.flush()
        db.session.add(Registration(event_id=event.id, person_id=person.id, status="confirmed",
                                    accessibility_needs="Step-free access"))
        db.session.commit()

    clock.set_now(T0 + timedelta(days=11 + 366))
    with app.app_context():
        purge_expired_personal_data()
        registration = db.session.execute(select(Registration)).scalar_one()
        assert registration.person_id is None and registration.accessibility_needs == ""
        assert db.session.get(Person, person.id).erased_at is None  # not yet 24 months

    clock.set_now(T0 + timedelta(days=731))
    with app.app_context():
        assert purge_expired_personal_data() == 1
        erased = db.session.get(Person, person.id)
        assert erased.erased_at is not None and erased.organization == ""
        assert purge_expired_personal_data() == 0
        assert db.session.execute(select(func.count(Registration.id))).scalar_one() == 1


def test_one_late_run_purges_every_area_then_the_people_left_with_nothing(app, make):
    """With the clock moved far past every period, one run of the job removes what each area
    holds and erases those left with nothing (the people area runs last); a second run
    changes nothing more. Someone still active anywhere stays."""
    from portal.groups.models import Membership, WorkingGroup
    from portal.groups.services import add_member, create_group, decide_application, remove_member
    from portal.guidelines.jobs import release_due_guidelines
    from portal.guidelines.models import CopyRequest, Guideline, ReleaseNotice

    clock.set_now(T0)
    reader_id = make.person("reader@example.ca", name="Reader").id
    with app.app_context():
        group = create_group(slug="tables", name_en="Tables")
        former = confirmed_application(group, email="former@example.ca", name="Former", consent=True, consent_wording="w")
        decide_application(former, approve=True, actor=None)
        remove_member(former, actor=None)
        member = add_member(group, email="member@example.ca", name="Member", actor=None)
        guideline = Guideline(title_en="Tables guide", status="scheduled", release_at=T0 + timedelta(minutes=5))
        db.session.add(guideline)
        db.session.flush()
        db.session.add_all([
            CopyRequest(guideline_id=guideline.id, person_id=reader_id, status="confirmed", confirmed_at=T0),
            CopyRequest(guideline_id=guideline.id, person_id=member.person_id, status="confirmed", confirmed_at=T0),
        ])
        db.session.commit()
        ids = {"former": former.person_id, "member": member.person_id, "reader": reader_id}
    clock.set_now(T0 + timedelta(minutes=5))
    with app.app_context():
        assert release_due_guidelines() == 1

    def state():
        with app.app_context():
            count = lambda model: db.session.execute(select(func.count()).select_from(model)).scalar_one()  # noqa: E731
            return {
                "erased": sorted(k for k, i in ids.items() if db.session.get(Person, i).erased_at is not None),
                "memberships": count(Membership), "copy_requests": count(CopyRequest),
                "notices": count(ReleaseNotice), "subscriptions": sorted(db.session.execute(
                    select(Subscription.status)).scalars()),
                "groups": count(WorkingGroup),
            }

    before = state()
    assert before == {"erased": [], "memberships": 2, "copy_requests": 2, "notices": 2,
                      "subscriptions": ["active", "unsubscribed"], "groups": 1}
    clock.set_now(T0 + timedelta(days=800))
    with app.app_context():
        assert purge_expired_personal_data() > 0
    after = state()
    # The former member (membership, list row) and the reader (request, notice) are gone and
    # erased; the active member keeps their membership and subscription, loses the request.
    assert after == {"erased": ["former", "reader"], "memberships": 1, "copy_requests": 0, "notices": 0,
                     "subscriptions": ["active"], "groups": 1}
    with app.app_context():
        assert purge_expired_personal_data() == 0
    assert state() == after


def test_the_consent_only_forecast_reads_consent_a_chunk_of_people_at_a_time(app, make):
    """A scale pass counted 4,517 statements for the retention page: one consent query per
    person. The statements no longer grow with the people."""
    from portal.people.retention import _consent_only_people

    def add(first: int, count: int) -> None:
        for n in range(first, first + count):
            person_id = make.person(f"c{n}@example.ca").id
            with app.app_context():
                record_consent(db.session.get(Person, person_id), purpose="list:news", kind=ConsentKind.WITHDRAWN)
                db.session.commit()

    def forecast() -> tuple[int, int]:
        with counted_statements(app) as seen, app.app_context():
            due = _consent_only_people(clock.now())
        return len(seen), len(due)

    add(0, 2)
    few, due_few = forecast()
    add(2, 10)
    many, due_many = forecast()
    assert (due_few, due_many) == (2, 12)
    assert many == few
