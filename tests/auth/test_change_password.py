"""A signed-in account changes its own password (OWASP ASVS 2.1.5, 2.1.6): current password,
new one twice; its other login sessions end; the change is audited without the password."""
from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import func, select

from portal.auth.models import LoginAttempt, LoginSession, OrganizerAccount, Role
from portal.core.audit import AuditEntry
from portal.extensions import db
from tests.conftest import BACKENDS, Auth, csrf_token

PAGE = "/account/password"
NEW = "maple harbour lantern"


def change(client, current, new, again=None):
    return client.post(PAGE, data={"current_password": current, "new_password": new,
                                   "new_password_again": new if again is None else again,
                                   "csrf_token": csrf_token(client, PAGE)})


def sign_in(client, email, password):
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": csrf_token(client, "/login")})


def error_beside(page: str, field: str) -> str:
    match = re.search(rf'<p class="error-message" id="{field}-error">(.*?)</p>', page, re.S)
    assert match, f"no error beside {field}"
    return match.group(1)


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response.location == "/login?next=%2Faccount%2Fpassword"


def test_the_page_has_labelled_fields_for_password_managers(client, auth, organizer):
    auth.login(organizer)
    page = client.get(PAGE).get_data(as_text=True)
    assert f'href="{PAGE}"' in page  # linked from the nav
    for name, autocomplete in (("current_password", "current-password"), ("new_password", "new-password"),
                               ("new_password_again", "new-password")):
        assert f'<label for="{name}">' in page
        field = re.search(rf'<input[^>]*id="{name}"[^>]*>', page).group(0)
        assert f'autocomplete="{autocomplete}"' in field and 'type="password"' in field
    assert 'name="csrf_token"' in page


@pytest.mark.parametrize("role", [Role.ADMIN, Role.ORGANIZER, Role.CHAIR])
def test_every_kind_of_account_changes_its_password_and_other_sessions_end(app, make, role):
    account = make.organizer()
    with app.app_context():
        db.session.get(OrganizerAccount, account.id).role = role.value
        db.session.commit()
    here, elsewhere = app.test_client(), app.test_client()
    Auth(here).login(account)
    Auth(elsewhere).login(account)
    assert elsewhere.get(PAGE).status_code == 200

    response = change(here, account.password, NEW)
    assert response.status_code == 302
    page = here.get(response.location).get_data(as_text=True)
    assert "Your password is changed" in page
    assert here.get(PAGE).status_code == 200  # this browser stays signed in
    assert elsewhere.get(PAGE).status_code == 302  # the other one is signed out

    assert sign_in(app.test_client(), account.email, account.password).status_code == 400
    assert sign_in(app.test_client(), account.email, NEW).status_code == 302
    with app.app_context():
        entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "auth.password.changed")).scalar_one()
        assert entry.actor_id == account.id and entry.detail == {"other_sessions_ended": 1}
        open_sessions = db.session.execute(select(func.count()).select_from(LoginSession).where(
            LoginSession.ended_at.is_(None))).scalar_one()
        assert open_sessions == 2  # this browser's, and the sign-in with the new password


def test_a_wrong_current_password_is_refused_beside_its_field_and_recorded(app, client, auth, organizer):
    auth.login(organizer)
    response = change(client, "not my password", NEW)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "That is not your current password." in error_beside(page, "current_password")
    assert "There is a problem" in page
    with app.app_context():
        failures = db.session.execute(select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.email == organizer.email, LoginAttempt.succeeded.is_(False))).scalar_one()
        assert failures == 1
        refused = db.session.execute(select(AuditEntry).where(
            AuditEntry.action == "auth.password.change_refused")).scalar_one()
        assert refused.detail == {"reason": "wrong current password"}
    assert sign_in(app.test_client(), organizer.email, organizer.password).status_code == 302


@pytest.mark.parametrize("new, again, field, message", [
    (NEW, "maple harbour lanterns", "new_password_again", "The two new passwords are not the same."),
    ("password1234", None, "new_password", "too common or too easy to guess"),
    ("short one", None, "new_password", "at least 12 characters"),
    ("correct horse battery", None, "new_password", "not the one you have now"),
])
def test_a_new_password_that_will_not_do_is_refused_beside_its_field(app, client, auth, organizer,
                                                                     new, again, field, message):
    auth.login(organizer)
    response = change(client, organizer.password, new, again)
    assert response.status_code == 400
    assert message in error_beside(response.get_data(as_text=True), field)
    assert sign_in(app.test_client(), organizer.email, organizer.password).status_code == 302


def test_a_new_password_with_the_accounts_own_name_is_refused(app, client, auth, make):
    account = make.organizer(email="kim.robertson@example.ca")
    auth.login(account)
    response = change(client, account.password, "Robertson-Kim-2026")
    assert "must not contain your email address or your name" in error_beside(
        response.get_data(as_text=True), "new_password")


def test_guessing_the_current_password_is_throttled_per_account(app, client, auth, organizer):
    app.config["LOGIN_FAILURES_PER_ACCOUNT_PER_HOUR"] = 3
    auth.login(organizer)
    for _ in range(3):
        assert change(client, "a guess at it", NEW).status_code == 400
    # The right one is refused too while throttled: the check comes first.
    response = change(client, organizer.password, NEW)
    assert response.status_code == 429
    assert "Too many failed attempts" in error_beside(response.get_data(as_text=True), "current_password")
    # And the wrong guesses count against signing in as well.
    assert sign_in(app.test_client(), organizer.email, organizer.password).status_code == 429


def test_the_form_is_rate_limited(client, auth, organizer):
    auth.login(organizer)
    token = csrf_token(client, PAGE)
    statuses = [client.post(PAGE, data={"current_password": "x", "new_password": "y", "new_password_again": "y",
                                        "csrf_token": token}).status_code for _ in range(11)]
    assert statuses[:10] == [400] * 10 and statuses[10] == 429


def test_without_a_csrf_token_nothing_changes(app, client, auth, organizer):
    auth.login(organizer)
    response = client.post(PAGE, data={"current_password": organizer.password, "new_password": NEW,
                                       "new_password_again": NEW})
    assert response.status_code == 400
    assert sign_in(app.test_client(), organizer.email, organizer.password).status_code == 302


def test_passwords_reach_neither_the_audit_log_nor_the_logs(app, client, auth, organizer, caplog):
    caplog.set_level(logging.DEBUG)
    auth.login(organizer)
    change(client, "Wrong-Guess-Secret", NEW)
    change(client, organizer.password, NEW)
    with app.app_context():
        details = repr(db.session.execute(select(AuditEntry.detail)).scalars().all())
    for secret in (organizer.password, NEW, "Wrong-Guess-Secret"):
        assert secret not in details and secret not in caplog.text


# PostgreSQL only: there the second change waits on the account's row lock while the first
# commits; SQLite's writers never overlap.
@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_two_browsers_changing_the_password_at_once_cannot_both_pass_the_old_one(app, organizer):
    """A race pass: four browsers each told 'changed', only the last password working."""
    from sqlalchemy import update

    from portal.auth.passwords import hash_password
    from portal.auth.services import WrongCurrentPassword, change_password

    with app.app_context():
        as_signed_in = db.session.get(OrganizerAccount, organizer.id)
        with db.engine.begin() as first_browser:  # its change committed first
            first_browser.execute(update(OrganizerAccount).where(OrganizerAccount.id == organizer.id)
                                  .values(password_hash=hash_password("river stone orchard")))
        with pytest.raises(WrongCurrentPassword):
            change_password(as_signed_in, organizer.password, NEW, keep_session_key=None)
        db.session.rollback()
