"""Guidelines retention: with the clock moved past the period, exactly the copy requests and
release notices due go, once; the download counts by sector stay true."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from portal.core import clock
from portal.extensions import db
from portal.guidelines import services
from portal.guidelines.jobs import release_due_guidelines
from portal.guidelines.models import CopyRequest, Guideline, GuidelineDownload, ReleaseNotice
from portal.people.models import Person, Sector
from tests.guidelines.conftest import add_people, confirmed_requests, create_guideline, subscribe
from tests.retention import purge_at
from tests.conftest import forecast_day

T0 = datetime(2026, 2, 2, 15, tzinfo=UTC)
DAY = timedelta(days=1)


def _seed(app) -> dict[str, object]:
    """A released guideline (requesters, a subscriber, a late confirmer, downloads), one still
    scheduled far ahead, and one withdrawn before its release."""
    clock.set_now(T0)
    with app.app_context():
        released = create_guideline(release_at=T0 + timedelta(minutes=10), title="Released")
        waiting = create_guideline(release_at=T0 + 2000 * DAY, title="Waiting")
        withdrawn = create_guideline(release_at=T0 + 5 * DAY, title="Withdrawn")
        requesters = add_people(2, "req")
        confirmed_requests(released.id, requesters)
        subscriber = add_people(1, "sub")
        subscribe(subscriber)
        waiter, cancelled, pending = add_people(1, "wait") + add_people(1, "cancel") + add_people(1, "pend")
        confirmed_requests(waiting.id, [waiter])
        confirmed_requests(withdrawn.id, [cancelled])
        db.session.add(CopyRequest(guideline_id=waiting.id, person_id=pending, status="pending"))
        services.withdraw_guideline(withdrawn)
        sector = db.session.execute(select(Sector).order_by(Sector.position, Sector.id)).scalars().first()
        db.session.commit()
        ids = {"sector_name": sector.name_en, "released": released.id, "waiting": waiting.id,
               "withdrawn": withdrawn.id, "sector": sector.id,
               "requesters": requesters, "subscriber": subscriber[0], "waiter": waiter, "pending": pending}

    clock.set_now(T0 + timedelta(minutes=10))
    with app.app_context():
        assert release_due_guidelines() == 1
        guideline = db.session.get(Guideline, ids["released"])
        for _ in range(6):
            services.record_download(guideline, "en", sector_id=ids["sector"], via="link")
        services.record_download(guideline, "fr", sector_id=None, via="public")
        db.session.commit()

    # 100 days later someone confirms a request: they are told at once (a later notice).
    clock.set_now(T0 + 100 * DAY)
    with app.app_context():
        late = add_people(1, "late")[0]
        confirmed_requests(ids["released"], [late])
        assert services._insert_notice(ids["released"], late, "request")
        db.session.execute(update(CopyRequest).where(CopyRequest.person_id == late).values(notified_at=clock.now()))
        db.session.commit()
        ids["late"] = late
    return ids


def _state(app) -> dict[str, object]:
    with app.app_context():
        requests = sorted(
            (title, email, status) for title, email, status in db.session.execute(
                select(Guideline.title_en, Person.email, CopyRequest.status)
                .join(Guideline, Guideline.id == CopyRequest.guideline_id)
                .join(Person, Person.id == CopyRequest.person_id))
        )
        notices = sorted(db.session.execute(
            select(Person.email).join(ReleaseNotice, ReleaseNotice.person_id == Person.id)).scalars())
        downloads = db.session.execute(select(func.count()).select_from(GuidelineDownload)).scalar_one()
        guideline = db.session.execute(select(Guideline).where(Guideline.title_en == "Released")).scalar_one()
        by_sector = [(s.label, s.count) for s in services.downloads_by_sector(guideline)]
        people = db.session.execute(select(func.count()).select_from(Person)
                                    .where(Person.erased_at.is_(None))).scalar_one()
        return {"requests": requests, "notices": notices, "downloads": downloads, "by_sector": by_sector,
                "people": people}


def _purge(app, at: datetime) -> int:
    from portal.guidelines.retention import purge_due

    return purge_at(app, purge_due, at)


def test_requests_and_notices_go_when_due_and_counts_stay(app):
    ids = _seed(app)
    start = _state(app)
    assert start["requests"] == [
        ("Released", "late0@example.ca", "confirmed"), ("Released", "req0@example.ca", "confirmed"),
        ("Released", "req1@example.ca", "confirmed"), ("Waiting", "pend0@example.ca", "pending"),
        ("Waiting", "wait0@example.ca", "confirmed"), ("Withdrawn", "cancel0@example.ca", "confirmed"),
    ]
    assert start["notices"] == ["late0@example.ca", "req0@example.ca", "req1@example.ca", "sub0@example.ca"]
    assert start["by_sector"] == [(ids["sector_name"], 6), ("Not known (public page or no sector)", None)]

    assert _purge(app, T0 + 719 * DAY) == 0
    assert _state(app) == start

    # 24 months (720 days) after the release: the three requests for the released guideline
    # (the late one too), the withdrawn one's request (confirmed at T0), the three notices
    # queued at the release. The late notice, the request still waiting for its release and
    # the unconfirmed one (the people area's 30-day rule) stay.
    assert _purge(app, T0 + 720 * DAY + timedelta(minutes=10)) == 7
    after = _state(app)
    assert after["requests"] == [("Waiting", "pend0@example.ca", "pending"),
                                 ("Waiting", "wait0@example.ca", "confirmed")]
    assert after["notices"] == ["late0@example.ca"]
    assert {k: after[k] for k in ("downloads", "by_sector", "people")} == {
        k: start[k] for k in ("downloads", "by_sector", "people")}
    assert _purge(app, T0 + 720 * DAY + timedelta(minutes=10)) == 0
    assert _state(app) == after

    assert _purge(app, T0 + 819 * DAY) == 0
    assert _purge(app, T0 + 820 * DAY) == 1  # the late notice, 720 days after it was queued
    final = _state(app)
    assert final == {**after, "notices": []}
    # Years on, the request still waiting for its guideline's release stays.
    assert _purge(app, T0 + 1999 * DAY) == 0
    assert _state(app) == final


def test_the_period_is_a_setting(app):
    _seed(app)
    app.config["GUIDELINE_RETENTION_MONTHS"] = 3  # 90 days
    try:
        assert _purge(app, T0 + 89 * DAY) == 0
        # The three release-time notices and the released guideline's three requests, and
        # the withdrawn guideline's request; the late notice (day 100) waits until day 190.
        assert _purge(app, T0 + 90 * DAY + timedelta(minutes=10)) == 7
        assert _purge(app, T0 + 90 * DAY + timedelta(minutes=10)) == 0
        assert _purge(app, T0 + 190 * DAY) == 1
        assert _purge(app, T0 + 190 * DAY) == 0
    finally:
        app.config.pop("GUIDELINE_RETENTION_MONTHS", None)


def test_a_revision_after_the_period_reaches_only_who_is_still_on_record(app):
    """The notice rows are what a revision's release reads: once purged, an old reader is
    told of a revision only if they asked again or are on the releases list."""
    ids = _seed(app)
    _purge(app, T0 + 721 * DAY)
    clock.set_now(T0 + 722 * DAY)
    with app.app_context():
        revision = create_guideline(release_at=T0 + 723 * DAY, title="Released", version="2.0",
                                    revision_of_id=ids["released"])
        db.session.commit()
        recipients = services.release_recipients(revision)
    assert recipients == {ids["subscriber"]: "list", ids["late"]: "revision"}


def test_organizers_see_when_requests_and_notices_go(app, client, auth, organizer):
    _seed(app)
    clock.set_now(T0 + 700 * DAY)
    auth.login(organizer)
    html = client.get("/admin/privacy/retention").get_data(as_text=True)
    assert '<h2 id="area-guidelines">Guidelines</h2>' in html
    assert "Confirmed copy requests" in html and "24 months after the guideline" in html
    day = forecast_day(T0 + 720 * DAY)
    assert f"{day}: 4" in html  # three requests for the released guideline, one for the withdrawn
    assert f"{day}: 3" in html  # three notices queued at the release
