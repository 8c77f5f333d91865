"""Demo data, and the list opt-in that is acted on only once the request is confirmed."""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from portal.core.clock import now
from portal.extensions import db
from portal.guidelines import demo
from portal.guidelines.models import Guideline, GuidelineStatus
from portal.mail.models import OutboxMessage
from tests.conftest import csrf_token
from tests.guidelines.conftest import create_guideline, releases_list


def test_demo_seeds_three_guidelines_once_with_real_pdfs(app_context, app):
    demo.seed_demo()
    demo.seed_demo()
    db.session.commit()
    guidelines = {g.title_en: g for g in db.session.execute(select(Guideline)).scalars()}
    assert len(guidelines) == 3
    statuses = sorted(g.status for g in guidelines.values())
    assert statuses == ["draft", "released", "scheduled"]
    scheduled = guidelines[demo.SCHEDULED_TITLE]
    assert now() < scheduled.release_at <= now() + timedelta(minutes=10)
    for edition in scheduled.editions:
        content = (Path(app.instance_path) / "guidelines" / edition.stored_name).read_bytes()
        assert content.startswith(b"%PDF-1.4") and content.rstrip().endswith(b"%%EOF")
        # The cross-reference offsets point at the objects: a reader can open it.
        xref = int(re.search(rb"startxref\n(\d+)", content).group(1))
        assert content[xref:xref + 4] == b"xref"
        for offset in re.findall(rb"(\d{10}) 00000 n", content):
            assert re.match(rb"\d+ 0 obj", content[int(offset):])



def test_every_seeding_leaves_a_release_a_few_minutes_ahead(app_context):
    """`make run` seeds then serves: whatever earlier runs did, a release is due a few minutes
    after start, so a newcomer sees one happen."""
    from portal.core import clock
    from portal.guidelines.jobs import release_due_guidelines

    start = now()
    clock.set_now(start)
    demo.seed_demo()
    db.session.commit()
    first = db.session.execute(select(Guideline).where(Guideline.title_en == demo.SCHEDULED_TITLE)).scalar_one()
    assert first.release_at == start + demo.DEMO_RELEASE_DELAY and first.version == "1.0"

    # Seeded again an hour later, before any scheduler ran: the same guideline, re-timed.
    clock.set_now(start + timedelta(hours=1))
    demo.seed_demo()
    db.session.commit()
    db.session.refresh(first)
    assert first.status == GuidelineStatus.SCHEDULED
    assert first.release_at == start + timedelta(hours=1) + demo.DEMO_RELEASE_DELAY
    assert db.session.execute(select(func.count()).select_from(Guideline)).scalar() == 3

    # That run's scheduler released it; the next `make run` schedules a revision.
    clock.set_now(first.release_at + timedelta(seconds=5))
    assert release_due_guidelines() == 1
    later = now() + timedelta(days=1)
    clock.set_now(later)
    demo.seed_demo()
    db.session.commit()
    versions = list(db.session.execute(
        select(Guideline).where(Guideline.title_en == demo.SCHEDULED_TITLE).order_by(Guideline.id)).scalars())
    assert [(g.version, g.status) for g in versions] == [("1.0", "released"), ("1.1", "scheduled")]
    assert versions[1].revision_of_id == versions[0].id
    assert versions[1].release_at == later + demo.DEMO_RELEASE_DELAY
    assert {e.language for e in versions[1].editions} == {"en", "fr"}
    clock.set_now(versions[1].release_at)
    assert release_due_guidelines() == 1

def test_ticked_opt_in_asks_the_lists_area_once_the_request_is_confirmed(app, client):
    with app.app_context():
        releases_list()
        gid = create_guideline(status=GuidelineStatus.SCHEDULED).id
        db.session.commit()
    response = client.post(f"/guidelines/{gid}/request", data={
        "csrf_token": csrf_token(client, f"/guidelines/{gid}/request"), "name": "Opt In",
        "email": "optin@example.ca", "language": "en", "list_opt_in": "y"})
    assert response.status_code == 302
    from portal.lists.models import Subscription

    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Subscription)).scalar() == 0
        body = db.session.execute(select(OutboxMessage.body_text)).scalar_one()
    confirm_path = re.search(r"http://portal\.test(/guidelines/confirm/[\w-]+)", body).group(1)
    assert client.post(confirm_path, data={"csrf_token": csrf_token(client, confirm_path)}).status_code == 200
    with app.app_context():
        subscription = db.session.execute(select(Subscription)).scalar_one()
        assert subscription.status == "pending"  # the lists area runs its own confirmation
        purposes = set(db.session.execute(select(OutboxMessage.purpose)).scalars())
        assert len(purposes) == 2 and "guidelines.request_confirmation" in purposes
