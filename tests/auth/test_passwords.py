"""The rule for new passwords (OWASP ASVS 2.1.1, 2.1.7): at least 12 characters, not common
or breached, not built on the account's email address or name. Signing in with an older
password is not affected."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.auth.passwords import WeakPassword, check_new_password, hash_password
from portal.extensions import db
from tests.conftest import csrf_token


@pytest.mark.parametrize("password", [
    "symposium-2014",  # the demo organizer's (flask seed-demo)
    "correct horse battery", "chair password 1", "long enough pass", "a secret passphrase 42",
    "Trois-Rivières en été", "x7#Lq9!vR2@m",
    "the quick brown fox jumps over the lazy dog and keeps running " * 2,  # 124 characters
])
def test_reasonable_passwords_are_accepted(password):
    check_new_password(password, email="emilie.ouellet@example.ca", name="Émilie Ouellet")


@pytest.mark.parametrize("password, message", [
    ("short pass!", "at least 12 characters"),
    ("p" * 129, "at most 128 characters"),
    ("password1234", "too common"),
    ("P@ssw0rd2024", "too common"),
    ("qwertyuiop123", "too common"),
    ("123456789012", "too common"),
    ("iloveyou1234", "too common"),
    ("abcdefghijkl", "too common"),
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "too common"),
    ("emilie.ouellet!!", "email address or your name"),
    ("Emilie-Ouellet-99", "email address or your name"),
    ("my name is ÉMILIE OUELLET", "email address or your name"),
    ("ouellet2024!", "email address or your name"),
])
def test_weak_passwords_are_refused_with_the_reason(app_context, password, message):
    with pytest.raises(WeakPassword) as refused:
        hash_password(password, email="emilie.ouellet@example.ca", name="Émilie Ouellet")
    assert message in str(refused.value.message)
    assert refused.value.field == "password"


def test_the_demo_organizer_password_meets_the_rule(app_context):
    from portal.admin.demo import DEMO_ORGANIZER_EMAIL, DEMO_ORGANIZER_PASSWORD

    assert hash_password(DEMO_ORGANIZER_PASSWORD, email=DEMO_ORGANIZER_EMAIL, name="Demo Organizer")


def test_create_organizer_refuses_a_common_password(runner):
    result = runner.invoke(args=["create-organizer", "x@example.ca"], input="password1234\n")
    assert result.exit_code != 0
    assert "too common or too easy to guess" in result.output


def test_create_organizer_refuses_a_password_with_the_address(runner):
    result = runner.invoke(args=["create-organizer", "robertson@example.ca", "--name", "Kim Robertson"],
                           input="robertson-2024-kim\n")
    assert result.exit_code != 0
    assert "must not contain your email address or your name" in result.output


def test_older_short_passwords_still_sign_in(app, client):
    """The rule is for new passwords: an account made when 8 characters were enough still signs in."""
    from portal.auth.models import OrganizerAccount
    from portal.auth.passwords import password_hasher

    with app.app_context():
        db.session.add(OrganizerAccount(email="old@example.ca", password_hash=password_hasher.hash("oldpass8")))
        db.session.commit()
    response = client.post("/login", data={"email": "old@example.ca", "password": "oldpass8",
                                           "csrf_token": csrf_token(client, "/login")})
    assert response.status_code == 302


def test_the_chairs_account_form_shows_the_rule_beside_the_password(app, client, auth, organizer):
    from portal.auth.models import OrganizerAccount
    from portal.groups.services import create_group

    with app.app_context():
        create_group(slug="tables", name_en="Situation Tables", mandate_en="Share.", communities=["Toronto"],
                     terms_of_reference="Be kind.", tor_version="1")
        db.session.commit()
    auth.login(organizer)
    page = "/admin/groups/tables/chairs"
    for password, message in (("password1234", "too common"), ("dana-levesque-1", "your email address or your name"),
                              ("short", "at least 12 characters")):
        response = client.post(page, data={"email": "dana.levesque@example.ca", "name": "Dana Lévesque",
                                           "password": password, "csrf_token": csrf_token(client, page)})
        assert response.status_code == 400
        text = response.get_data(as_text=True)
        error = text[text.index('id="password-error"'):]
        assert message in error[:error.index("</p>")], password
        assert re.search(r'aria-describedby="[^"]*password-error"', text)
    response = client.post(page, data={"email": "dana.levesque@example.ca", "name": "Dana Lévesque",
                                       "password": "maple harbour lantern", "csrf_token": csrf_token(client, page)})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.execute(select(OrganizerAccount.role).where(
            OrganizerAccount.email == "dana.levesque@example.ca")).scalar_one() == "chair"


def test_the_chair_service_applies_the_rule_too(app_context):
    from portal.groups.services import create_chair_account, create_group

    group = create_group(slug="tables", name_en="Situation Tables", mandate_en="Share.", communities=["Toronto"],
                         terms_of_reference="Be kind.", tor_version="1")
    with pytest.raises(WeakPassword) as refused:
        create_chair_account("sam.tremblay@example.ca", "tremblay12345", group, name="Sam Tremblay")
    assert refused.value.field == "password"
