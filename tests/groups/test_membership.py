"""Joining, deciding, inviting, leaving: and the group's list following membership exactly."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.core import clock
from portal.extensions import db
from tests.conftest import BACKENDS, csrf_token, without_csrf_tokens
from tests.groups.conftest import link_in


def _apply(client, slug, *, confirm: bool = True, **overrides):
    """Apply on the public form and, unless `confirm` is False, confirm from the emailed link
    as the address's owner would (with the directory choices made on the form)."""
    data = {
        "name": "Alex Applicant", "email": "Alex@Example.ca", "organization": "Sudbury Police",
        "sector": "", "community": "Sudbury", "why": "I run our situation table.", "consent": "y",
        "csrf_token": csrf_token(client, f"/groups/{slug}/apply"),
    }
    data.update(overrides)
    response = client.post(f"/groups/{slug}/apply", data=data)
    if confirm and response.status_code == 302:
        link = _confirmation_link(client.application, data["email"].casefold())
        if link and client.get(link).status_code == 200:
            choices = {name: "y" for name in ("show_email", "show_organization") if data.get(name)}
            client.post(link, data={"consent": "y", **choices, "csrf_token": csrf_token(client, link)})
    return response


def _confirmation_link(app, email: str) -> str | None:
    """The newest link emailed to `email` to confirm an application, if any."""
    from portal.mail.models import OutboxMessage

    with app.app_context():
        bodies = [m.body_text for m in db.session.execute(
            select(OutboxMessage).where(OutboxMessage.purpose == "groups.application_confirm")
            .order_by(OutboxMessage.id.desc())).scalars() if email in m.to_address.casefold()]
    return link_in(bodies[0], "/groups/applications/") if bodies else None


def _membership(app, email):
    from portal.groups.models import Membership
    from portal.people.models import Person

    with app.app_context():
        membership = db.session.execute(
            select(Membership).join(Person).where(Person.email == email)
        ).scalar_one()
        db.session.expunge(membership)
        return membership


def _subscription_status(app, group_id, email):
    from portal.groups.models import WorkingGroup
    from portal.lists.models import Subscription
    from portal.people.models import Person

    with app.app_context():
        group = db.session.get(WorkingGroup, group_id)
        return db.session.execute(
            select(Subscription.status).join(Person, Subscription.person_id == Person.id)
            .where(Subscription.list_id == group.mailing_list_id, Person.email == email)
        ).scalar_one_or_none()


def _outbox(app, purpose):
    from portal.mail.models import OutboxMessage

    with app.app_context():
        return [(m.to_address, m.body_text) for m in db.session.execute(
            select(OutboxMessage).where(OutboxMessage.purpose == purpose).order_by(OutboxMessage.id)).scalars()]


def test_group_has_its_list_and_a_public_page(app, client, groups):
    from portal.groups.models import WorkingGroup
    from portal.lists.models import MailingList

    info = groups.group()
    with app.app_context():
        mailing_list = db.session.get(MailingList, db.session.get(WorkingGroup, info.id).mailing_list_id)
        assert mailing_list.kind == "group" and mailing_list.slug == "group-situation-tables"
    page = client.get("/groups/situation-tables").get_data(as_text=True)
    assert "Situation Tables" in page and "<strong>practice</strong>" in page and "Sudbury" in page
    assert "Situation Tables" in client.get("/groups").get_data(as_text=True)


def test_application_records_consent_and_waits_for_a_decision(app, client, groups):
    from portal.people.models import ConsentRecord

    info = groups.group()
    response = _apply(client, info.slug)
    assert response.status_code == 302
    membership = _membership(app, "alex@example.ca")
    assert membership.status == "applied" and membership.why == "I run our situation table."
    assert _subscription_status(app, info.id, "alex@example.ca") is None  # not on the list yet
    with app.app_context():
        consent = db.session.execute(select(ConsentRecord).where(ConsentRecord.purpose == "list:group-situation-tables")).scalar_one()
        assert consent.kind == "express" and "Situation Tables" in consent.wording and consent.method == "double opt-in"
    assert len(_outbox(app, "groups.application_confirm")) == 1


def test_the_chairs_hear_that_applications_wait_at_most_once_an_hour(app, client, groups):
    """The applicant is told it reached the chairs: the chairs are emailed that applications
    wait, with a link to decide, once an hour at most (the form is public: anyone could send
    many), and nothing an applicant typed goes into that email."""
    from portal.core import clock

    info = groups.group()
    groups.chair(info, "dana.chair@example.ca")
    _apply(client, info.slug, name="URGENT visit https://evil.example/login", organization="Evil")
    _apply(client, info.slug, email="second@example.ca")  # the same hour: no second email
    [(to, body)] = _outbox(app, "groups.applications_waiting")
    assert "dana.chair@example.ca" in to
    assert "1 application to the group Situation Tables waits for a decision." in body
    assert f"/admin/groups/{info.slug}" in body and "evil.example" not in body and "Evil" not in body
    clock.set_now(clock.now() + timedelta(hours=1))
    try:
        _apply(client, info.slug, email="third@example.ca")
    finally:
        clock.reset()
    assert "3 applications to the group Situation Tables wait" in _outbox(app, "groups.applications_waiting")[-1][1]


def test_applications_waiting_go_to_who_can_sign_in_and_decide(app, client, groups, make):
    """Found by a review: a chair who is only a member (no account) was emailed a sign-in
    link they could not use, and nobody who could act was told. With no chair account the
    organizers are told; a member chair is not."""
    info = groups.group()
    groups.member(info, "helen.marsh@example.ca", name="Helen Marsh", role="chair")
    make.organizer()  # an organizer account: may decide any group's applications
    _apply(client, info.slug, email="alex@example.ca")
    recipients = [to for to, _body in _outbox(app, "groups.applications_waiting")]
    assert recipients and not any("helen.marsh" in to for to in recipients)
    with app.app_context():
        from portal.auth.models import OrganizerAccount

        organizers = db.session.execute(select(OrganizerAccount.email)).scalars().all()
    assert all(any(email in to for to in recipients) for email in organizers)


def test_application_without_consent_is_refused(app, client, groups):
    from portal.groups.models import Membership

    info = groups.group()
    response = _apply(client, info.slug, consent="")
    assert response.status_code == 400
    assert "Tick the box" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(Membership)).first() is None


def test_chair_approves_and_the_member_is_subscribed_and_emailed(app, client, auth, groups):
    info = groups.group()
    _apply(client, info.slug)
    membership = _membership(app, "alex@example.ca")
    auth.login(groups.chair(info))
    response = client.post(f"/admin/groups/{info.slug}/memberships/{membership.id}/decision",
                           data={"decision": "approve", "csrf_token": csrf_token(client, f"/admin/groups/{info.slug}")})
    assert response.status_code == 302
    assert _membership(app, "alex@example.ca").status == "active"
    assert _subscription_status(app, info.id, "alex@example.ca") == "active"
    [(to, body)] = _outbox(app, "groups.application_approved")
    assert "alex@example.ca" in to and "/groups/situation-tables/members/access/" in body
    # Deciding twice is refused with a clear 409, not a 500.
    again = client.post(f"/admin/groups/{info.slug}/memberships/{membership.id}/decision",
                        data={"decision": "decline", "csrf_token": csrf_token(client, f"/admin/groups/{info.slug}")})
    assert again.status_code == 409 and "already been decided" in again.get_data(as_text=True)


def test_declined_applicant_is_emailed_and_not_subscribed(app, client, auth, organizer, groups):
    info = groups.group()
    _apply(client, info.slug)
    membership = _membership(app, "alex@example.ca")
    auth.login(organizer)
    client.post(f"/admin/groups/{info.slug}/memberships/{membership.id}/decision",
                data={"decision": "decline", "csrf_token": csrf_token(client, f"/admin/groups/{info.slug}")})
    assert _membership(app, "alex@example.ca").status == "declined"
    assert _subscription_status(app, info.id, "alex@example.ca") is None
    assert len(_outbox(app, "groups.application_declined")) == 1


def test_leaving_and_removal_unsubscribe_at_once(app, client, auth, organizer, groups):
    from portal.core.audit import AuditEntry

    info = groups.group()
    leaver = groups.member(info, "leaver@example.ca", acknowledged=True)
    removed = groups.member(info, "removed@example.ca")
    assert _subscription_status(app, info.id, "leaver@example.ca") == "active"
    assert _subscription_status(app, info.id, "removed@example.ca") == "active"

    client.get(groups.member_link(leaver))
    token = csrf_token(client, f"/groups/{info.slug}/members")
    response = client.post(f"/groups/{info.slug}/members/leave", data={"leave-csrf_token": token})
    assert response.status_code == 302
    assert _membership(app, "leaver@example.ca").status == "left"
    assert _subscription_status(app, info.id, "leaver@example.ca") == "unsubscribed"
    # The members' pages close for them at once.
    assert client.get(f"/groups/{info.slug}/members").location.endswith("/members/link")

    auth.login(organizer)
    page = f"/admin/groups/{info.slug}/memberships/{removed}"
    response = client.post(f"{page}/remove", data={"remove-csrf_token": csrf_token(client, page)})
    assert response.status_code == 302
    assert _subscription_status(app, info.id, "removed@example.ca") == "unsubscribed"
    with app.app_context():
        actions = set(db.session.execute(select(AuditEntry.action)).scalars())
    assert {"groups.membership.left", "groups.membership.removed"} <= actions
    # The ledger says which it was.
    from portal.people.models import ConsentRecord, Person

    with app.app_context():
        methods = dict(db.session.execute(
            select(Person.email, ConsentRecord.method).join(Person, Person.id == ConsentRecord.person_id)
            .where(ConsentRecord.kind == "withdrawn")).all())
    assert methods == {"leaver@example.ca": "left the group", "removed@example.ca": "removed from the group"}


def test_rejoining_after_leaving_subscribes_again(app, client, auth, organizer, groups):
    info = groups.group()
    membership_id = groups.member(info, "alex@example.ca")
    auth.login(organizer)
    page = f"/admin/groups/{info.slug}/memberships/{membership_id}"
    client.post(f"{page}/remove", data={"remove-csrf_token": csrf_token(client, page)})
    assert _subscription_status(app, info.id, "alex@example.ca") == "unsubscribed"
    _apply(client, info.slug)
    client.post(f"/admin/groups/{info.slug}/memberships/{membership_id}/decision",
                data={"decision": "approve", "csrf_token": csrf_token(client, f"/admin/groups/{info.slug}")})
    assert _subscription_status(app, info.id, "alex@example.ca") == "active"


def test_applying_again_as_a_member_changes_nothing_but_sends_the_link(app, client, groups):
    info = groups.group()
    groups.member(info, "alex@example.ca")
    response = _apply(client, info.slug)
    assert response.status_code == 302  # the same answer as for a new applicant
    assert _membership(app, "alex@example.ca").status == "active"
    [(_to, body)] = _outbox(app, "groups.member_link")
    assert "/members/access/" in body


def test_organizer_invites_and_the_person_accepts(app, client, auth, organizer, groups):
    info = groups.group()
    auth.login(organizer)
    page = f"/admin/groups/{info.slug}/invitations/new"
    response = client.post(page, data={"email": "invitee@example.ca", "name": "In Vitee", "role": "observer",
                                       "csrf_token": csrf_token(client, page)})
    assert response.status_code == 302
    auth.logout()
    [(_to, body)] = _outbox(app, "groups.invitation")
    path = link_in(body, "/groups/invitations/")
    assert "observer" in client.get(path).get_data(as_text=True).lower()
    refused = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert refused.status_code == 400  # consent box left unticked
    response = client.post(path, data={"consent": "y", "show_email": "y", "csrf_token": csrf_token(client, path)})
    assert response.status_code == 302 and response.location.endswith("/members")
    membership = _membership(app, "invitee@example.ca")
    assert membership.status == "active" and membership.role == "observer" and membership.show_email
    assert _subscription_status(app, info.id, "invitee@example.ca") == "active"
    # One use only: the link no longer works.
    assert client.get(path).status_code == 404


def test_an_invitation_to_a_french_reader_is_in_french_and_so_is_the_rest_of_their_mail(app, client, auth,
                                                                                          organizer, groups):
    from portal.mail.models import OutboxMessage
    from portal.people.models import Person

    info = groups.group()
    auth.login(organizer)
    page = f"/admin/groups/{info.slug}/invitations/new"
    client.post(page, data={"email": "olivier@example.ca", "name": "Olivier Neuf", "role": "member",
                            "language": "fr", "csrf_token": csrf_token(client, page)})
    auth.logout()
    with app.app_context():
        invitation = db.session.execute(select(OutboxMessage).where(
            OutboxMessage.purpose == "groups.invitation")).scalar_one()
        assert invitation.language == "fr" and "Bonjour" in invitation.body_text
    path = link_in(invitation.body_text, "/groups/invitations/")
    assert '<html lang="fr">' in client.get(path).get_data(as_text=True)  # the page speaks as the email did
    client.post(path, data={"consent": "y", "csrf_token": csrf_token(client, path)})
    with app.app_context():
        assert db.session.execute(select(Person.language).where(Person.email == "olivier@example.ca")).scalar() == "fr"
        welcome = db.session.execute(select(OutboxMessage).where(
            OutboxMessage.purpose != "groups.invitation").order_by(OutboxMessage.id.desc())).scalars().first()
        assert welcome.language == "fr"


def test_organizer_adds_a_member_directly(app, client, auth, organizer, groups):
    info = groups.group()
    auth.login(organizer)
    page = f"/admin/groups/{info.slug}/members/new"
    response = client.post(page, data={"email": "direct@example.ca", "name": "Di Rect", "role": "secretariat",
                                       "term_start": "2026-01-01", "term_end": "2027-12-31",
                                       "csrf_token": csrf_token(client, page)})
    assert response.status_code == 302
    membership = _membership(app, "direct@example.ca")
    assert membership.status == "active" and membership.role == "secretariat"
    assert str(membership.term_end) == "2027-12-31"
    assert _subscription_status(app, info.id, "direct@example.ca") == "active"
    assert len(_outbox(app, "groups.member_added")) == 1
    again = client.post(page, data={"email": "direct@example.ca", "name": "Di Rect", "role": "member",
                                    "csrf_token": csrf_token(client, page)})
    assert again.status_code == 409 and "already an active member" in again.get_data(as_text=True)
    # A term that ends before it starts: said beside Term end, as on a membership's own page.
    backwards = client.post(page, data={"email": "late@example.ca", "name": "Late", "role": "member",
                                        "term_start": "2027-01-01", "term_end": "2026-01-01",
                                        "csrf_token": csrf_token(client, page)})
    body = backwards.get_data(as_text=True)
    assert backwards.status_code == 400 and 'id="email-error"' not in body
    error = re.search(r'id="term_end-error">(.*?)</p>', body, re.S)
    assert error and "The term cannot end before it starts." in error.group(1)


def test_role_changes_are_audited(app, client, auth, groups):
    from portal.core.audit import AuditEntry

    info = groups.group()
    membership_id = groups.member(info, "alex@example.ca")
    chair = groups.chair(info)
    auth.login(chair)
    page = f"/admin/groups/{info.slug}/memberships/{membership_id}"
    response = client.post(page, data={"role": "co-chair", "term_start": "2026-01-01", "term_end": "2027-06-30",
                                       "csrf_token": csrf_token(client, page)})
    assert response.status_code == 302
    with app.app_context():
        entry = db.session.execute(
            select(AuditEntry).where(AuditEntry.action == "groups.membership.role_changed")).scalar_one()
        assert entry.actor_id == chair.id and entry.subject == f"membership:{membership_id}"
        assert entry.detail["old"] == "member" and entry.detail["new"] == "co-chair"
    assert _membership(app, "alex@example.ca").role == "co-chair"
    bad = client.post(page, data={"role": "member", "term_start": "2027-01-01", "term_end": "2026-01-01",
                                  "csrf_token": csrf_token(client, page)})
    assert bad.status_code == 400 and "cannot end before it starts" in bad.get_data(as_text=True)
    assert 'id="term_end-error"' in bad.get_data(as_text=True)


def test_members_link_request_answers_the_same_for_anyone(app, client, groups):
    info = groups.group()
    groups.member(info, "member@example.ca")
    page = f"/groups/{info.slug}/members/link"
    answers = []
    for email in ("member@example.ca", "stranger@example.ca"):
        response = client.post(page, data={"email": email, "csrf_token": csrf_token(client, page)},
                               follow_redirects=True)
        answers.append(without_csrf_tokens(response.get_data(as_text=True)).replace(email, ""))
    assert answers[0] == answers[1]
    links = _outbox(app, "groups.member_link")
    assert len(links) == 1 and "member@example.ca" in links[0][0]


def test_members_link_goes_at_most_once_in_any_ten_minutes(app, client, groups):
    """Not once per clock window: a request just before a window's edge and one just after
    would otherwise both send."""
    from datetime import UTC, datetime

    clock.set_now(datetime(2026, 12, 8, 15, 9, 30, tzinfo=UTC))  # 30 s before a 10-minute edge
    info = groups.group()
    groups.member(info, "member@example.ca")
    page = f"/groups/{info.slug}/members/link"

    def ask() -> None:
        client.post(page, data={"email": "member@example.ca", "csrf_token": csrf_token(client, page)})

    ask()
    clock.advance(timedelta(minutes=1))
    ask()
    assert len(_outbox(app, "groups.member_link")) == 1
    clock.advance(timedelta(minutes=9, seconds=1))
    ask()
    assert len(_outbox(app, "groups.member_link")) == 2


def test_chair_posts_to_the_group_list(app, client, auth, groups):
    from portal.mail.models import OutboxMessage

    info = groups.group()
    groups.member(info, "one@example.ca")
    groups.member(info, "two@example.ca")
    auth.login(groups.chair(info))
    page = f"/admin/groups/{info.slug}/post"
    preview = client.post(page, data={"subject": "Meeting", "body": "See you **Tuesday**.", "action": "preview",
                                      "csrf_token": csrf_token(client, page)})
    assert preview.status_code == 200 and "<strong>Tuesday</strong>" in preview.get_data(as_text=True)
    # Before sending, the chair sees how many it reaches, and the button asks first.
    assert "It would reach 2 members now." in preview.get_data(as_text=True)
    assert 'data-confirm="Send this message to 2 members now?"' in preview.get_data(as_text=True)
    response = client.post(page, data={"subject": "Meeting", "body": "See you **Tuesday**.", "action": "send",
                                       "csrf_token": csrf_token(client, page)})
    assert response.status_code == 302
    assert "The message was sent to 2 members." in client.get(response.location).get_data(as_text=True)
    with app.app_context():
        rows = db.session.execute(select(OutboxMessage).where(OutboxMessage.category == "list")).scalars().all()
        assert sorted(r.to_address.split("<")[-1].rstrip(">") for r in rows) == ["one@example.ca", "two@example.ca"]
        assert all("List-Unsubscribe" in r.headers for r in rows)
        # One reason why, the right one: they are members of the group, not subscribers of a list.
        assert all(r.body_text.count("You receive this") == 1 for r in rows)
        assert all("because you are a member of “Situation Tables”" in r.body_text for r in rows)


def test_a_message_sent_again_by_a_resubmitted_form_does_not_reach_the_members_twice(app, client, auth, groups):
    """Found by a review: 'Send me a test' (the form then carries the draft), then Send
    submitted twice, mailed every member twice; so did Send twice without a test."""
    from portal.mail.models import OutboxMessage

    info = groups.group()
    groups.member(info, "one@example.ca")
    auth.login(groups.chair(info))
    page = f"/admin/groups/{info.slug}/post"
    token = csrf_token(client, page)
    message = {"subject": "Double send", "body": "Once only.", "csrf_token": token}
    tested = client.post(page, data={**message, "action": "test"})
    draft = re.search(r'name="draft" type="hidden" value="(\d+)"', tested.get_data(as_text=True)).group(1)
    assert client.post(page, data={**message, "action": "send", "draft": draft}).status_code == 302
    again = client.post(page, data={**message, "action": "send", "draft": draft})
    assert again.status_code == 409 and "already been sent" in again.get_data(as_text=True)
    without_draft = client.post(page, data={**message, "action": "send"})
    assert without_draft.status_code == 409 and "a moment ago" in without_draft.get_data(as_text=True)

    def copies() -> int:
        with app.app_context():
            return len(db.session.execute(select(OutboxMessage).where(
                OutboxMessage.category == "list", OutboxMessage.to_address.contains("one@example.ca"))).all())

    assert copies() == 1
    # Back to the sent message's form (it still carries the draft) and written anew: a new message.
    rewritten = client.post(page, data={**message, "body": "Something else.", "action": "send", "draft": draft})
    assert rewritten.status_code == 302 and copies() == 2
    clock.advance(timedelta(minutes=11))  # later, the same words are a new message
    assert client.post(page, data={**message, "action": "send"}).status_code == 302
    assert copies() == 3


def _unsubscribe_path(app, group_id, email):
    from portal.groups.models import WorkingGroup
    from portal.lists.models import Subscription
    from portal.lists.services import unsubscribe_path, unsubscribe_token
    from portal.people.models import Person

    with app.app_context():
        group = db.session.get(WorkingGroup, group_id)
        subscription = db.session.execute(
            select(Subscription).join(Person, Subscription.person_id == Person.id)
            .where(Subscription.list_id == group.mailing_list_id, Person.email == email)
        ).scalar_one()
        return unsubscribe_path(unsubscribe_token(subscription))


def test_unsubscribing_from_the_group_list_ends_the_membership(app, client, groups):
    """The list's subscribers stay exactly the active members: a member who unsubscribes
    (one click from a message, or the preference centre) leaves the group, and is told so."""
    from portal.core.audit import AuditEntry

    info = groups.group()
    clicker = groups.member(info, "clicker@example.ca", acknowledged=True)
    stayer = groups.member(info, "stayer@example.ca")
    link = groups.member_link(clicker)
    path = _unsubscribe_path(app, info.id, "clicker@example.ca")

    page = client.get(path)  # a GET changes nothing, and says what the button will do
    assert page.status_code == 200
    assert "also ends your membership" in page.get_data(as_text=True)
    assert _membership(app, "clicker@example.ca").status == "active"

    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and response.location is None
    assert "no longer a member" in response.get_data(as_text=True)
    assert _membership(app, "clicker@example.ca").status == "left"
    assert _subscription_status(app, info.id, "clicker@example.ca") == "unsubscribed"
    assert _membership(app, "stayer@example.ca").status == "active"
    # Their members' link is revoked like any leaver's.
    assert client.get(link).status_code == 404
    with app.app_context():
        entry = db.session.execute(select(AuditEntry).where(
            AuditEntry.action == "groups.membership.left")).scalar_one()
        assert entry.subject == f"membership:{clicker}"
        assert entry.detail["method"] == "unsubscribed from the group's list"

    # The preference centre: unticking the group's list leaves the group too.
    from portal.groups.models import Membership, WorkingGroup
    from portal.lists.services import request_preferences_link

    with app.app_context():
        request_preferences_link("stayer@example.ca")
        db.session.commit()
    [(_, body)] = _outbox(app, "lists.preferences")
    preferences = link_in(body, "/lists/preferences/")
    page = client.get(preferences).get_data(as_text=True)
    assert "also ends your membership of that group" in page
    response = client.post(preferences, data={"language": "en", "csrf_token": csrf_token(client, preferences)})
    assert response.status_code == 302
    assert _membership(app, "stayer@example.ca").status == "left"
    assert _subscription_status(app, info.id, "stayer@example.ca") == "unsubscribed"
    with app.app_context():
        group = db.session.get(WorkingGroup, info.id)
        assert db.session.execute(select(Membership).where(
            Membership.group_id == group.id, Membership.status == "active")).first() is None
    assert stayer


def _ledger(app, email: str) -> list[tuple[str, str]]:
    from portal.people.models import ConsentRecord, Person

    with app.app_context():
        return [(r.kind, r.source) for r in db.session.execute(
            select(ConsentRecord).join(Person, Person.id == ConsentRecord.person_id)
            .where(Person.email == email).order_by(ConsentRecord.id)).scalars()]


def test_a_member_added_by_an_organizer_rests_on_implied_consent_that_lapses(app, client, auth, organizer, groups):
    from datetime import timedelta

    from portal.core import clock
    from portal.lists.models import MailingList
    from portal.lists.services import recipients

    info = groups.group()
    auth.login(organizer)
    page = f"/admin/groups/{info.slug}/members/new"
    client.post(page, data={"email": "ivan@example.ca", "name": "Ivan", "role": "member",
                            "csrf_token": csrf_token(client, page)})
    # One row, the one the way in recorded: implied, with its expiry. Nothing turns it express.
    assert _ledger(app, "ivan@example.ca") == [("implied", f"groups.admin.add:{info.slug}")]
    with app.app_context():
        from portal.groups.models import WorkingGroup

        mailing_list = db.session.get(MailingList, db.session.get(WorkingGroup, info.id).mailing_list_id)
        assert [s.person.email for s in recipients(mailing_list)] == ["ivan@example.ca"]
        clock.advance(timedelta(days=2 * 365 + 2))
        assert recipients(mailing_list) == []  # two years on, the group's mail stops


def test_an_approved_applicant_rests_on_the_express_consent_they_gave(app, client, auth, groups):
    info = groups.group()
    _apply(client, info.slug)
    membership = _membership(app, "alex@example.ca")
    auth.login(groups.chair(info))
    client.post(f"/admin/groups/{info.slug}/memberships/{membership.id}/decision",
                data={"decision": "approve", "csrf_token": csrf_token(client, f"/admin/groups/{info.slug}")})
    kinds = [kind for kind, _source in _ledger(app, "alex@example.ca")]
    assert kinds == ["express"]


def test_opening_the_post_page_writes_nothing_even_after_a_rename(app, client, auth, organizer, groups):
    """A GET only reads (on SQLite a reader that writes can fail while another writes): the
    count of recipients reads the list; a rename updates the list's names when it is saved."""
    from sqlalchemy import event as sa_event

    from portal.groups.models import WorkingGroup
    from portal.groups.services import update_group
    from portal.lists.models import MailingList

    info = groups.group()
    groups.member(info, "one@example.ca")
    with app.app_context():
        group = db.session.get(WorkingGroup, info.id)
        update_group(group, name_en="Situation Tables of Ontario")
        db.session.commit()
        assert db.session.get(MailingList, group.mailing_list_id).name_en == "Situation Tables of Ontario"
    auth.login(groups.chair(info))
    statements = []
    with app.app_context():
        engine = db.engine
    record = lambda _conn, _cursor, statement, *_args: statements.append(statement)  # noqa: E731
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        page = client.get(f"/admin/groups/{info.slug}/post")
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    assert page.status_code == 200 and "It would reach 1 member now." in page.get_data(as_text=True)
    writes = [s for s in statements if s.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))
              and "rate" not in s.lower() and "audit" not in s.lower() and "login_session" not in s.lower()]
    assert writes == []


def test_two_sends_of_one_message_at_once_reach_the_members_once(app, groups):
    """A code review: two simultaneous sends (a double click) both checked before either
    committed, and on PostgreSQL both went out. The second now waits on the list's lock and
    finds the message sent."""
    import threading

    from portal.core.db import writing
    from portal.groups.models import WorkingGroup
    from portal.groups.services import SentAMomentAgo, save_group_post, send_group_post

    info = groups.group()
    groups.member(info, "one@example.ca")
    first_checked, first_may_commit = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def send(name: str) -> None:
        with app.app_context(), writing():
            try:
                group = db.session.get(WorkingGroup, info.id)
                post = save_group_post(group, subject="Once", body="Only once.", author=None)
                send_group_post(group, post, actor=None)
                if name == "first":
                    first_checked.set()
                    first_may_commit.wait(10)
                db.session.commit()
                outcomes[name] = "sent"
            except SentAMomentAgo:
                db.session.rollback()
                outcomes[name] = "refused"
            finally:
                first_checked.set()

    first = threading.Thread(target=send, args=("first",))
    first.start()
    assert first_checked.wait(10)
    second = threading.Thread(target=send, args=("second",))
    second.start()
    second.join(1.0)  # it waits for the first one's lock
    first_may_commit.set()
    first.join(20)
    second.join(20)
    assert outcomes == {"first": "sent", "second": "refused"}


def test_a_chair_asking_for_another_groups_membership_gets_a_logged_404(app, client, auth, groups, caplog):
    """A chair's own group's pages, given a membership id of another group: the same 404 as
    an unknown id, and logged as a refused authorization (a review found it left no trace)."""
    mine = groups.group()
    theirs = groups.group(slug="privacy", name="Information Sharing and Privacy")
    chair = groups.chair(mine)
    other = groups.member(theirs, "kept@example.ca")
    auth.login(chair)
    page = f"/admin/groups/{mine.slug}"
    caplog.set_level("WARNING")
    path = f"{page}/memberships/{other}/remove"
    assert client.post(path, data={"csrf_token": csrf_token(client, page)}).status_code == 404
    assert f"authorization refused: account={chair.id} path={path} (membership {other} belongs elsewhere)" in caplog.text
    from portal.groups.models import Membership

    with app.app_context():
        assert db.session.get(Membership, other).status == "active"


def test_the_public_form_never_rewrites_what_is_under_way_for_an_address(app, client, auth, organizer, groups):
    """A review: a stranger applying with someone's address cancelled their invitation (its
    link went dead), rewrote a waiting application (reasons, and the directory choices the
    chairs then approved), and mailed an active member a new link at every submit."""
    info = groups.group()
    auth.login(organizer)
    page = f"/admin/groups/{info.slug}/invitations/new"
    client.post(page, data={"email": "ivan@example.ca", "name": "Ivan Invited", "role": "member",
                            "csrf_token": csrf_token(client, page)})
    # Invited twice by a double click: the first email's link must still work.
    again = client.post(page, data={"email": "ivan@example.ca", "name": "Ivan Invited", "role": "member",
                                    "csrf_token": csrf_token(client, page)})
    assert again.status_code == 409 and "invited a few minutes ago" in again.get_data(as_text=True)
    auth.logout()
    [(_to, body)] = _outbox(app, "groups.invitation")
    invitation = link_in(body, "/groups/invitations/")

    assert _apply(client, info.slug, email="ivan@example.ca", why="A stranger").status_code == 302
    assert client.get(invitation).status_code == 200  # still his to accept
    assert _membership(app, "ivan@example.ca").status == "invited"

    _apply(client, info.slug, email="jordan@example.ca", name="Jordan Smith", why="I chair our table.")
    _apply(client, info.slug, email="jordan@example.ca", why="Replaced by a stranger", show_email="y",
           show_organization="y")
    jordan = _membership(app, "jordan@example.ca")
    assert (jordan.status, jordan.why, jordan.show_email, jordan.show_organization) == (
        "applied", "I chair our table.", False, False)

    groups.member(info, "dana@example.ca")
    for _ in range(5):
        _apply(client, info.slug, email="dana@example.ca")
    assert len(_outbox(app, "groups.member_link")) == 1  # one link per 10 minutes


def test_a_term_approved_in_the_evening_starts_on_that_days_date_in_ontario(app, groups):
    """A review: approved at 9:30 PM in Toronto (02:30 UTC the next day), the term started
    'tomorrow'."""
    from datetime import UTC, date, datetime

    from portal.core import clock

    clock.set_now(datetime(2026, 12, 8, 2, 30, tzinfo=UTC))  # 9:30 PM on December 7 in Toronto
    info = groups.group()
    membership_id = groups.member(info, "evening@example.ca")
    with app.app_context():
        from portal.groups.models import Membership

        assert db.session.get(Membership, membership_id).term_start == date(2026, 12, 7)


def test_the_directory_sorts_accented_names_among_the_others(app, groups):
    from portal.groups.models import WorkingGroup
    from portal.groups.services import active_members

    info = groups.group()
    for email, name in (("g@example.ca", "Grace Okafor"), ("e@example.ca", "Élise Fortin"),
                        ("m@example.ca", "Marc Tremblay")):
        groups.member(info, email, name=name)
    with app.app_context():
        names = [m.person.name for m in active_members(db.session.get(WorkingGroup, info.id))]
    assert names == ["Élise Fortin", "Grace Okafor", "Marc Tremblay"]


def test_a_members_data_page_shows_what_the_chairs_did_to_their_membership_in_words(app, groups, make):
    """A review: the my-data page left out every audit entry about a membership (it looked
    for a table named 'membership'; it is group_membership), and showed 'active', 'co-chair'
    and ISO dates, even in French."""
    from datetime import date

    from flask_babel import force_locale

    from portal.groups.models import Membership
    from portal.groups.services import set_role
    from portal.people.models import Person
    from portal.people.privacy import audit_subjects_of, collect_personal_data

    info = groups.group()
    membership_id = groups.member(info, "grace@example.ca", name="Grace Okafor")
    organizer = make.organizer()
    with app.app_context():
        from portal.auth.models import OrganizerAccount

        set_role(db.session.get(Membership, membership_id), role="co-chair", term_start=date(2026, 1, 1),
                 term_end=date(2027, 6, 30), actor=db.session.get(OrganizerAccount, organizer.id))
        db.session.commit()
        person = db.session.execute(select(Person).where(Person.email == "grace@example.ca")).scalar_one()
        assert f"membership:{membership_id}" in audit_subjects_of(person)
        with app.test_request_context(headers={"Accept-Language": "fr"}), force_locale("fr"):
            sections = {section.table: section for section in collect_personal_data(person)}
            memberships = sections["group_membership"]
            assert memberships.value_label("role", "co-chair") == "Coprésidence"
            assert memberships.value_label("status", "active") == "Actif"
            assert any(f"membership:{membership_id}" in str(row) for row in sections["audit_entry"].rows)


def test_an_application_reaches_the_chairs_only_once_its_address_confirms_it(app, client, auth, organizer, groups):
    """A review: anyone could file an application in someone's name, which the chairs saw
    and approved, subscribing that address to the group's list on consent a stranger ticked.
    The address now confirms it from an emailed link first (double opt-in, as lists do)."""
    from portal.people.models import ConsentRecord

    info = groups.group()
    groups.chair(info, "dana.chair@example.ca")
    response = _apply(client, info.slug, email="claire@example.ca", name="Claire", confirm=False)
    assert response.status_code == 302
    assert "confirm your application from the link we sent" in client.get(response.location).get_data(as_text=True)
    assert _membership(app, "claire@example.ca").status == "unconfirmed"
    assert _outbox(app, "groups.applications_waiting") == []  # the chairs hear of nothing yet
    auth.login(organizer)
    assert "claire@example.ca" not in client.get(f"/admin/groups/{info.slug}").get_data(as_text=True)
    auth.logout()
    for _ in range(3):  # the public form again: no flood of links
        _apply(client, info.slug, email="claire@example.ca", name="Claire", confirm=False)
    [(_to, body)] = _outbox(app, "groups.application_confirm")
    link = link_in(body, "/groups/applications/")
    page = client.get(link).get_data(as_text=True)
    assert "I run our situation table." in page and "claire@example.ca" in page
    refused = client.post(link, data={"csrf_token": csrf_token(client, link)})
    assert refused.status_code == 400  # the consent box is the address owner's to tick
    with app.app_context():
        assert db.session.execute(select(ConsentRecord)).first() is None
    assert client.post(link, data={"consent": "y", "csrf_token": csrf_token(client, link)}).status_code == 302
    membership = _membership(app, "claire@example.ca")
    assert membership.status == "applied" and membership.applied_at is not None
    with app.app_context():
        consent = db.session.execute(select(ConsentRecord)).scalar_one()
        assert (consent.method, consent.ip) == ("double opt-in", "127.0.0.1")
    assert len(_outbox(app, "groups.applications_waiting")) == 1
    assert client.get(link).status_code == 404  # used


def test_an_unconfirmed_application_stands_as_shown_is_purged_in_time_and_re_asks_after_a_decline(
        app, client, groups):
    """From a review of the double opt-in: a second form within the 10 minutes rewrote the
    text the owner was about to confirm; an application never confirmed was never purged; a
    re-application after a decline in the same 10 minutes sent no email."""
    from datetime import timedelta

    from portal.core import clock
    from portal.groups.models import Membership, WorkingGroup
    from portal.groups.retention import purge_due
    from portal.groups.services import decide_application

    info = groups.group()
    _apply(client, info.slug, email="eve@example.ca", why="Original reason.", confirm=False)
    _apply(client, info.slug, email="eve@example.ca", why="A stranger's text.", confirm=False)
    [(_to, body)] = _outbox(app, "groups.application_confirm")
    link = link_in(body, "/groups/applications/")
    assert "Original reason." in client.get(link).get_data(as_text=True)
    client.post(link, data={"consent": "y", "csrf_token": csrf_token(client, link)})
    assert _membership(app, "eve@example.ca").why == "Original reason."
    with app.app_context():
        decide_application(db.session.execute(select(Membership)).scalar_one(), approve=False, actor=None)
        db.session.commit()
    _apply(client, info.slug, email="eve@example.ca", why="Once more.", confirm=False)
    assert len(_outbox(app, "groups.application_confirm")) == 2  # a new link, the same 10 minutes

    _apply(client, info.slug, email="never@example.ca", confirm=False)
    with app.app_context():
        months = db.session.get(WorkingGroup, info.id).retention_months
        purge_due(clock.now() + timedelta(days=30 * months + 1))
        db.session.commit()
        left = {m.person.email for m in db.session.execute(select(Membership)).scalars()}
    assert "never@example.ca" not in left


def test_no_group_can_take_the_applications_address(app, groups):
    import pytest

    from portal.core.errors import DomainError
    from portal.groups.services import create_group

    with app.app_context(), pytest.raises(DomainError):
        create_group(slug="applications", name_en="Applications", actor=None)


# PostgreSQL only: there a decision waits on the membership's row lock while another
# commits; SQLite's writers never overlap. Each test holds the membership as the page loaded
# it while another connection commits, then decides: read afresh, the decision sees it.
POSTGRESQL_ONLY = pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)


def _committed_meanwhile(membership_id: int, **values) -> None:
    from sqlalchemy import update

    from portal.groups.models import Membership

    with db.engine.begin() as other:
        other.execute(update(Membership).where(Membership.id == membership_id).values(**values))


@POSTGRESQL_ONLY
def test_an_invitation_accepted_twice_at_once_makes_one_member(app, client, auth, organizer, groups):
    """A race pass: eight browsers accepting one link at once gave four welcomes, four
    consent rows and four members' links."""
    from portal.core.errors import InvalidToken
    from portal.groups.services import accept_invitation, invitation_for

    info = groups.group()
    auth.login(organizer)
    page = f"/admin/groups/{info.slug}/invitations/new"
    client.post(page, data={"email": "twice@example.ca", "name": "Tw Ice", "role": "member",
                            "csrf_token": csrf_token(client, page)})
    [(_to, body)] = _outbox(app, "groups.invitation")
    raw = link_in(body, "/groups/invitations/").rsplit("/", 1)[1]
    with app.app_context():
        as_the_page_loaded_it = invitation_for(raw)
        _committed_meanwhile(as_the_page_loaded_it.id, status="active")  # the other click won
        with pytest.raises(InvalidToken):
            accept_invitation(raw, consent=True, consent_wording="I agree.")
        db.session.rollback()
    assert _outbox(app, "groups.member_added") == []


@POSTGRESQL_ONLY
def test_a_member_removed_by_one_chair_is_not_removed_or_edited_again_by_another(app, groups):
    """A race pass: a member leaving as a chair removed them were both recorded, and a role
    changed by another chair after the removal was 'saved' on a former member."""
    from portal.groups.models import Membership
    from portal.groups.services import NotAMember, remove_member, set_role

    info = groups.group()
    membership_id = groups.member(info, "twice@example.ca")
    with app.app_context():
        as_the_page_loaded_it = db.session.get(Membership, membership_id)
        assert as_the_page_loaded_it.is_active
        _committed_meanwhile(membership_id, status="left")
        with pytest.raises(NotAMember):
            remove_member(as_the_page_loaded_it, actor=None)
        db.session.rollback()
        # A second chair's role change after the removal: nothing left to change.
        with pytest.raises(NotAMember):
            set_role(db.session.get(Membership, membership_id), role="chair", term_start=None, term_end=None,
                     actor=None)
        db.session.rollback()
