"""`flask seed-demo` gives a newcomer realistic content, and running it twice changes nothing."""
from __future__ import annotations

from sqlalchemy import func, select

from portal.admin.demo import DEMO_ORGANIZER_EMAIL, DEMO_ORGANIZER_PASSWORD
from portal.extensions import db


def _row_counts() -> dict[str, int]:
    return {
        table.name: db.session.execute(select(func.count()).select_from(table)).scalar_one()
        for table in db.metadata.sorted_tables
        if table.name not in {"audit_entry", "login_attempt", "login_session", "access_token"}
    }


def test_seed_demo_is_idempotent_and_prints_the_demo_login(app, runner):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert f"{DEMO_ORGANIZER_EMAIL} / {DEMO_ORGANIZER_PASSWORD}" in first.output
    with app.app_context():
        after_first = _row_counts()
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0, second.output
    with app.app_context():
        assert _row_counts() == after_first
        assert after_first["sector"] == 11
        assert after_first["organizer_account"] == 1

    client = app.test_client()
    from tests.conftest import csrf_token

    response = client.post("/login", data={"email": DEMO_ORGANIZER_EMAIL, "password": DEMO_ORGANIZER_PASSWORD,
                                           "csrf_token": csrf_token(client, "/login")})
    assert response.status_code == 302
