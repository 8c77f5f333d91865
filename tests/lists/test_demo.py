"""The demo lists: created once, with consenting subscribers and a sent post in the archive."""
from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db


def test_seed_demo_is_idempotent_and_every_subscriber_has_consent(app, client):
    from portal.lists.demo import seed_demo
    from portal.lists.models import ListPost, MailingList, Subscription
    from portal.people.models import ConsentRecord

    with app.app_context():
        seed_demo()
        seed_demo()
        db.session.commit()
        lists = {m.slug: m for m in db.session.execute(select(MailingList)).scalars()}
        assert set(lists) == {"symposium-announcements", "guideline-releases"}
        assert lists["guideline-releases"].name_fr == "Publication des lignes directrices"
        assert db.session.execute(select(func.count()).select_from(Subscription)).scalar_one() == 6
        assert db.session.execute(select(func.count()).select_from(ConsentRecord)).scalar_one() == 6
        post = db.session.execute(select(ListPost)).scalar_one()
        assert post.status == "sent"
    archive = client.get("/lists/symposium-announcements/archive").get_data(as_text=True)
    assert "Save the date" in archive
    assert client.get(f"/lists/symposium-announcements/archive/{post.id}").status_code == 200
