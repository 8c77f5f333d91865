"""A person registers, gets the confirmation by real SMTP, cancels; the next in line is promoted.

Every page state is checked by axe-core: event page, form with errors, confirmed, waitlisted,
manage page, attendee list and check-in page.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
from playwright.sync_api import expect
from sqlalchemy import select

from portal.events.models import Event
from portal.extensions import db
from tests.browser.accessibility import assert_accessible
from tests.conftest import csrf_token
from tests.events.conftest import EventFactory

TORONTO = ZoneInfo("America/Toronto")


def _deliver(app) -> None:
    from portal.mail.delivery import deliver_due

    with app.app_context():
        deliver_due()


def _sign_in(page, account) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    page.get_by_label("Password").press("Enter")
    # Signed in once the login page is left: going elsewhere sooner would cut the sign-in short.
    page.wait_for_url(lambda url: "/login" not in url)


def _register(page, name: str, email: str) -> None:
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Organization").fill("Sudbury Public Health")
    page.get_by_label("Sector").select_option(label="Health care")
    page.get_by_label("Community you work in").fill("Sudbury")
    page.get_by_label("Dietary needs").fill("Vegetarian")
    workshop = page.get_by_role("group", name="Which workshop?")
    workshop.get_by_role("radio").first.focus()  # arrows move between options, space picks
    page.keyboard.press("ArrowDown")
    expect(workshop.get_by_role("radio", name="Outcomes")).to_be_checked()
    privacy = page.get_by_label(re.compile("I have read the privacy notice"))
    privacy.focus()
    page.keyboard.press("Space")
    expect(page.get_by_label(re.compile("send me announcements"))).not_to_be_checked()
    page.get_by_role("button", name="Register").press("Enter")


def test_register_receive_cancel_and_promote(app, page, live_server, smtp_server, organizer, make):
    starts = datetime(2031, 6, 12, 9, 0, tzinfo=TORONTO)
    event_id = EventFactory(app)(
        capacity=1, slug="cswb", title="Collaborating for Community Safety and Well-being",
        starts_in=starts - datetime.now(TORONTO),
        questions=[{"label": "Which workshop?", "kind": "single_choice", "required": True,
                    "choices_text": "Privacy\nOutcomes"}])
    with app.app_context():  # the factory counts from "now": pin the start exactly
        event = db.session.get(Event, event_id)
        event.starts_at, event.ends_at = starts, starts + timedelta(hours=7)
        db.session.commit()

    page.goto("/events")
    page.get_by_role("link", name="Collaborating for Community Safety and Well-being").click()
    expect(page.get_by_text("1 seat left.")).to_be_visible()
    assert_accessible(page, "event page")
    page.get_by_role("link", name="Register").click()

    page.get_by_role("button", name="Register").press("Enter")
    expect(page.locator(".error-summary")).to_be_focused()
    expect(page.get_by_label("Full name")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "registration form with errors")

    _register(page, "Ada Lovelace", "ada@example.ca")
    expect(page.get_by_role("heading", level=1)).to_have_text("You are registered")
    assert_accessible(page, "confirmed page")

    page.goto("/events/cswb/register")
    _register(page, "Grace Hopper", "grace@example.ca")
    expect(page.get_by_role("heading", level=1)).to_have_text("You are on the waitlist")
    expect(page.get_by_text("You are number 1 on the waitlist")).to_be_visible()
    assert_accessible(page, "waitlisted page")

    _deliver(app)
    (confirmation,) = smtp_server.to("ada@example.ca")
    assert confirmation["Subject"] == "You are registered: Collaborating for Community Safety and Well-being"
    attachments = {part.get_filename(): part for part in confirmation.iter_attachments()}
    assert set(attachments) == {"cswb.ics", "check-in-code.svg"}
    calendar = icalendar.Calendar.from_ical(attachments["cswb.ics"].get_content())
    (entry,) = calendar.walk("VEVENT")
    start = entry.decoded("dtstart")
    assert start == starts and start.tzinfo is not None
    assert entry["dtstart"].params["TZID"] == "America/Toronto"
    assert start.astimezone(TORONTO).hour == 9 and start.utcoffset() == timedelta(hours=-4)  # EDT in June
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["America/Toronto"]
    assert b"<svg" in attachments["check-in-code.svg"].get_content()
    assert len(smtp_server.to("grace@example.ca")) == 1  # the waitlist notice

    body = confirmation.get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"(http://127\.0\.0\.1:\d+/events/manage/[A-Za-z0-9_-]+)", body).group(1)
    page.goto(link)
    expect(page.get_by_text("Confirmed: you have a seat.")).to_be_visible()
    expect(page.get_by_label("Dietary needs")).to_have_value("Vegetarian")
    assert_accessible(page, "manage page")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel my registration").click()
    expect(page.get_by_text("Your registration is cancelled.")).to_be_visible()

    _deliver(app)
    promoted = [m for m in smtp_server.to("grace@example.ca") if "seat opened up" in m["Subject"]]
    assert len(promoted) == 1
    assert any(p.get_filename() == "cswb.ics" for p in promoted[0].iter_attachments())

    _sign_in(page, organizer)
    page.goto(f"/admin/events/{event_id}/attendees")
    expect(page.get_by_role("link", name="Grace Hopper")).to_be_visible()
    assert_accessible(page, "attendee list")
    # What a screen reader would be told: text added to a live region after the page loaded.
    page.add_init_script("""
      window.announced = [];
      new MutationObserver(function (changes) {
        changes.forEach(function (change) {
          // Not what the page was parsed with: only what changed once it was loaded.
          if (document.readyState !== "loading" && change.target.closest && change.target.closest("[role=status]")) {
            change.addedNodes.forEach(function (node) { window.announced.push(node.textContent); });
          }
        });
      }).observe(document, {childList: true, subtree: true});
    """)
    page.goto(f"/admin/events/{event_id}/check-in")
    page.get_by_role("searchbox", name="Name, email or organization").fill("grace")  # results as you type
    # Only the count is announced as results come (a live table read every row aloud).
    expect(page.locator("[data-live-status]")).to_have_text("1 person matches.")
    expect(page.locator("[data-live-results]")).not_to_have_attribute("aria-live", "polite")
    page.get_by_role("button", name="Check in Grace Hopper").click()
    expect(page.get_by_text("Grace Hopper is checked in.")).to_be_visible()
    page.wait_for_function("window.announced.some(text => text.includes('Grace Hopper is checked in.'))")
    # The desk goes on with the next person: focus is back in the search box, not at the top.
    search = page.get_by_role("searchbox", name="Name, email or organization")
    expect(search).to_be_focused()
    # ...with the last name selected, so the next one typed replaces it.
    page.keyboard.type("ada")
    expect(search).to_have_value("ada")
    assert_accessible(page, "check-in page")
    # A bad scan: the error beside the emptied box, which keeps focus for the next scan.
    code = page.get_by_label(re.compile("^Check-in code"))
    code.fill("nonsense")
    code.press("Enter")
    expect(page.get_by_label(re.compile("^Check-in code"))).to_be_focused()
    expect(page.get_by_label(re.compile("^Check-in code"))).to_have_value("")
    expect(page.get_by_text("This code is not a valid check-in code for this event.")).to_be_visible()
    assert_accessible(page, "check-in page after a bad scan")
    page.goto(f"/admin/events/{event_id}")
    assert_accessible(page, "event dashboard")

    colleague = make.organizer()  # not on this event's team until added
    page.get_by_role("link", name="Organizers").click()
    page.get_by_label("Organizer account").select_option(value=str(colleague.id))
    page.get_by_role("button", name="Add to this event's organizers").click()
    expect(page.get_by_text(f"{colleague.email} is now one of this event's organizers.")).to_be_visible()
    expect(page.get_by_role("button", name=f"Remove {colleague.email} from this event's organizers")).to_be_visible()
    assert_accessible(page, "event organizers page")

    # Cancelling emails everyone and cannot be undone: the button asks first.
    page.goto(f"/admin/events/{event_id}")
    page.get_by_label("Status").select_option("cancelled")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Change status").click()
    assert asked and "cannot be undone" in asked[0]
    with app.app_context():
        assert db.session.get(Event, event_id).status == "published"


def test_an_organizer_writes_the_event_in_french_and_a_french_reader_sees_it(app, page, live_server, organizer):
    event_id = EventFactory(app)(slug="cswb", title="Collaborating for Community Safety",
                                 questions=[{"label": "Which workshop?", "kind": "single_choice",
                                             "choices_text": "Privacy\nOutcomes"}])
    _sign_in(page, organizer)
    page.goto(f"/admin/events/{event_id}/edit")
    page.get_by_label("Title in French").fill("Collaborer pour la sécurité communautaire")
    page.get_by_label("Description in French").fill("Une **journée** ensemble.")
    assert_accessible(page, "event form with its French fields")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Event saved.")).to_be_visible()
    page.goto(f"/admin/events/{event_id}/questions")
    page.get_by_role("link", name="Edit Which workshop?").click()
    page.get_by_label("Question in French").fill("Quel atelier?")
    page.get_by_label("Options in French, in the same order").fill("Vie privée\nRésultats")
    page.get_by_role("button", name="Save the question").click()

    page.goto("/events/cswb")
    page.get_by_role("button", name="Français").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Collaborer pour la sécurité communautaire")
    expect(page.locator(".event-description strong")).to_have_text("journée")
    assert_accessible(page, "event page in French")
    page.goto("/events/cswb/register")
    expect(page.get_by_role("radio", name="Vie privée")).to_be_visible()
    expect(page.get_by_role("group", name=re.compile("Quel atelier"))).to_be_visible()


def test_an_organizer_previews_a_message_in_both_languages_then_queues_it(app, page, live_server, organizer):
    from sqlalchemy import select

    from portal.mail.models import OutboxMessage

    event_id = EventFactory(app)(slug="cswb", title="Collaborating for Community Safety")
    registrant = app.test_client()
    registrant.post("/events/cswb/register", headers={"Accept-Language": "fr-CA"}, data={
        "csrf_token": csrf_token(registrant, "/events/cswb/register"), "name": "Émilie Tremblay",
        "email": "emilie@example.ca", "organization": "CISSS", "sector": "police",
        "community": "Gatineau", "privacy": "y"})
    _sign_in(page, organizer)
    page.goto(f"/admin/events/{event_id}/message")
    page.get_by_label("Confirmed attendees").check()
    page.get_by_label("Subject", exact=True).fill("Parking")
    page.get_by_label("Message", exact=True).fill("Use lot B.")
    page.get_by_label("Message in French").fill("Utilisez le stationnement B.")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#subject_fr-error")).to_contain_text("Give the French subject too")
    page.get_by_label("Subject in French").fill("Stationnement")
    page.get_by_role("button", name="Preview").press("Enter")
    preview = page.get_by_role("region", name="Preview")
    expect(preview).to_be_focused()  # the answer to "Preview" is below the form: the reader is taken there
    expect(preview).to_contain_text("This message would go to 1 person.")
    expect(preview.locator("pre[lang=fr]")).to_contain_text("Utilisez le stationnement B.")
    assert_accessible(page, "attendee message preview")
    with app.app_context():
        assert db.session.execute(select(OutboxMessage).where(OutboxMessage.purpose == "events.message")).first() is None
    page.get_by_role("button", name="Queue the message").click()
    expect(page.get_by_text("Your message is queued for 1 person.")).to_be_visible()
    with app.app_context():
        (sent,) = db.session.execute(select(OutboxMessage).where(OutboxMessage.purpose == "events.message")).scalars()
        assert sent.subject == "Stationnement" and "emilie@example.ca" in sent.to_address


def test_an_organizer_adds_a_registration_by_keyboard(app, page, live_server, organizer):
    event_id = EventFactory(app)(slug="cswb", title="Collaborating for Community Safety")
    _sign_in(page, organizer)
    page.goto(f"/admin/events/{event_id}/attendees")
    page.get_by_role("link", name="Add a registration").click()
    page.get_by_role("button", name="Add the registration").press("Enter")
    expect(page.locator(".error-summary")).to_be_focused()
    expect(page.get_by_label(re.compile("They were told how their information is used"))).to_have_attribute(
        "aria-invalid", "true")
    assert_accessible(page, "add-a-registration form with errors")
    page.get_by_label("Full name").fill("Émilie Tremblay")
    page.get_by_label("Email", exact=True).fill("emilie@example.ca")
    page.get_by_label("Organization").fill("CISSS de l'Outaouais")
    page.get_by_label("Sector").select_option(label="Health care")
    page.get_by_label("Community they work in").fill("Gatineau")
    page.get_by_label("Language of their emails").select_option("fr")
    page.get_by_label(re.compile("They were told how their information is used")).check()
    page.get_by_role("button", name="Add the registration").press("Enter")
    expect(page.get_by_text("Émilie Tremblay is registered and was emailed a confirmation.")).to_be_visible()
    assert_accessible(page, "the added registration")

    # A misspelt name for the badge: corrected from the attendee's page, by keyboard.
    page.locator("summary", has_text="Correct their details").press("Enter")
    name = page.get_by_label("Full name")
    expect(name).to_have_value("Émilie Tremblay")
    name.fill("")
    page.get_by_role("button", name="Save their details").press("Enter")
    expect(page.locator(".error-summary")).to_be_focused()
    expect(page.get_by_label("Full name")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "a correction of an attendee's details with errors")
    page.get_by_label("Full name").fill("Émilie Tremblay-Roy")
    page.get_by_role("button", name="Save their details").press("Enter")
    expect(page.get_by_text("Their details were corrected.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Émilie Tremblay-Roy")


def test_organizer_tables_scroll_in_their_own_box_on_a_phone(app, page, live_server, organizer):
    """At 320 px the attendee list and the check-in desk do not push the page sideways: a wide
    table scrolls in its box, which the keyboard reaches and a screen reader names."""
    event_id = EventFactory(app)(slug="cswb", title="Collaborating for Community Safety")
    page.set_viewport_size({"width": 320, "height": 640})
    _sign_in(page, organizer)
    page.goto(f"/admin/events/{event_id}/attendees/new")
    page.get_by_label("Full name").fill("Bartholomew Featherstonehaugh-Wolfeschlegel")
    page.get_by_label("Email", exact=True).fill("bart@example.ca")
    page.get_by_label("Organization").fill("Ministry of the Solicitor General")
    page.get_by_label("Sector").select_option(label="Police")
    page.get_by_label("Community they work in").fill("Thunder Bay")
    page.get_by_label(re.compile("They were told how their information is used")).check()
    page.get_by_role("button", name="Add the registration").click()
    expect(page.get_by_text("is registered and was emailed a confirmation")).to_be_visible()

    for path, what in ((f"/admin/events/{event_id}/attendees", "attendee list"),
                       (f"/admin/events/{event_id}/check-in?q=bart", "check-in search")):
        page.goto(path)
        # (On failure: what sticks out past the screen, outside the scrolling boxes.)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (what, page.evaluate(
            "Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right"
            " > window.innerWidth && !e.closest('.table-scroll')).map(e => e.tagName + '.' + e.className)"))
        box = page.locator(".table-scroll").first
        assert box.evaluate("b => b.scrollWidth > b.clientWidth"), what  # it does scroll here
        expect(box).to_have_attribute("role", "region")
        expect(box).to_have_attribute("tabindex", "0")
        assert box.get_attribute("aria-label"), what
        assert_accessible(page, f"{what} at 320 px")
    # At a desk's width the boxes fit: no extra tab stops.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"/admin/events/{event_id}/check-in?q=bart")
    expect(page.locator(".table-scroll").first).not_to_have_attribute("tabindex", "0")


def test_switching_language_keeps_what_was_typed(app, page, live_server, organizer):
    """Found on a phone: tapping "Français" halfway through the form reloaded it empty. What
    the person changed comes back, defaults they changed included; a box is never ticked for
    them (the consent boxes must be ticked on the page in the language they read)."""
    EventFactory(app)(slug="cswb", title="Collaborating for Community Safety")
    page.goto("/events/cswb/register")
    page.get_by_label("Full name").fill("Émilie Tremblay")
    page.get_by_label("Email").fill("emilie@example.ca")
    page.get_by_label("Sector").select_option(label="Health care")
    page.get_by_label(re.compile("I have read the privacy notice")).check()
    page.get_by_label(re.compile("send me announcements")).check()
    page.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_label("Nom complet")).to_have_value("Émilie Tremblay")
    expect(page.get_by_label("Courriel")).to_have_value("emilie@example.ca")
    expect(page.get_by_label("Secteur")).to_have_value("health-care")
    assert page.locator("input[name=privacy]").is_checked() is False
    assert page.locator("input[name=announcements]").is_checked() is False
    # Kept for that one reload only.
    page.reload()
    expect(page.get_by_label("Nom complet")).to_have_value("")
    assert page.evaluate("window.sessionStorage.length") == 0

    # A value changed from the page's own default comes back too (an event's time zone).
    page.get_by_role("button", name="English").click()
    _sign_in(page, organizer)
    page.goto("/admin/events/new")
    page.locator("input[name=timezone]").fill("America/Vancouver")
    page.locator("input[name=reminder_days]").fill("7")
    page.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("input[name=timezone]")).to_have_value("America/Vancouver")
    expect(page.locator("input[name=reminder_days]")).to_have_value("7")


def test_a_signed_in_organizer_is_warned_before_the_idle_sign_out_and_can_stay(app, page, live_server, organizer):
    """From an accessibility pass (WCAG 2.2.1): after 30 minutes without a request the
    server signs organizers out, and a half-written message was lost without a warning."""
    page.clock.install()
    _sign_in(page, organizer)
    page.goto("/admin/events/new")
    page.get_by_label("Title", exact=True).fill("A title being typed")
    warning = page.get_by_role("alertdialog", name="You will soon be signed out")
    expect(warning).to_be_hidden()
    page.clock.fast_forward("27:00")
    expect(warning).to_be_hidden()
    page.clock.fast_forward("01:05")  # two minutes before the limit
    expect(warning).to_be_visible()
    expect(page.get_by_role("button", name="Stay signed in")).to_be_focused()
    assert_accessible(page, "idle sign-out warning")
    with page.expect_response(lambda response: "/account/still-here" in response.url) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 204
    expect(warning).to_be_hidden()
    expect(page.get_by_label("Title", exact=True)).to_have_value("A title being typed")
    page.clock.fast_forward("27:00")
    expect(warning).to_be_hidden()  # the count started again
    page.clock.fast_forward("01:05")
    expect(warning).to_be_visible()


def test_an_organizer_moves_an_attendee_to_another_event_by_keyboard(app, page, live_server, smtp_server, organizer):
    """The wrong day chosen: moved from the attendee's page; the person hears of both events by
    real SMTP, and the seat they left goes to the next in line."""
    from portal.events.models import Registration
    from portal.people.models import Person

    factory = EventFactory(app)
    thursday = factory(slug="thursday", title="Thursday forum", capacity=1)
    friday = factory(slug="friday", title="Friday forum", capacity=5, starts_in=timedelta(days=31))
    for name, email in (("Ada Lovelace", "ada@example.ca"), ("Nadia Next", "nadia@example.ca")):
        page.goto("/events/thursday/register")
        page.get_by_label("Full name").fill(name)
        page.get_by_label("Email").fill(email)
        page.get_by_label("Organization").fill("Sudbury Public Health")
        page.get_by_label("Sector").select_option(label="Health care")
        page.get_by_label("Community you work in").fill("Sudbury")
        page.get_by_label(re.compile("I have read the privacy notice")).check()
        page.get_by_role("button", name="Register").press("Enter")
        page.wait_for_url("**/registered")
    with app.app_context():
        ada = db.session.execute(select(Registration.id).join(Person, Person.id == Registration.person_id)
                                 .where(Person.email == "ada@example.ca")).scalar_one()
    _sign_in(page, organizer)
    page.goto(f"/admin/events/{thursday}/attendees/{ada}")
    page.locator("summary", has_text="Move to another event").press("Enter")
    page.get_by_role("button", name="Move them").press("Enter")
    expect(page.locator(".error-summary")).to_be_focused()
    expect(page.get_by_label("Event to move them to")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "moving an attendee, with an error")
    expect(page.get_by_role("option", name=re.compile(r"^Friday forum · "))).to_have_count(1)  # with its date
    page.get_by_label("Event to move them to").select_option(str(friday))
    page.get_by_role("button", name="Move them").press("Enter")
    expect(page.get_by_text("Moved to Friday forum, where they have a seat.")).to_be_visible()
    expect(page.get_by_text(re.compile("The freed seat went to Nadia Next"))).to_be_visible()
    assert_accessible(page, "the moved attendee at the new event")
    page.goto(f"/admin/events/{thursday}/attendees/{ada}")
    expect(page.get_by_role("link", name="Friday forum")).to_have_attribute(
        "href", re.compile(rf"^/admin/events/{friday}/attendees/\d+$"))

    _deliver(app)
    subjects = sorted(str(m["Subject"]) for m in smtp_server.to("ada@example.ca"))
    assert "Registration moved: Thursday forum" in subjects
    assert any("Friday forum" in subject and "moved" not in subject for subject in subjects)
    assert any("Thursday forum" in str(m["Subject"]) for m in smtp_server.to("nadia@example.ca")
               if "seat" in m.get_body(("plain",)).get_content().lower())
