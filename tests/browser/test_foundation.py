"""A first walk through the portal in a real browser, checked by axe-core on every page."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.accessibility import assert_accessible


def test_home_french_login_logout(page, organizer):
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Collaborating for community safety")
    assert_accessible(page, "home")

    # The skip link is the first thing the keyboard reaches, and it moves focus to main.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()

    page.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Collaborer pour la sécurité")
    assert_accessible(page, "home in French")
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.get_by_role("link", name="Organizer sign in").click()
    assert_accessible(page, "login form")
    page.get_by_role("button", name="Sign in").click()
    # An empty form: the error summary takes focus and each field says what is wrong.
    expect(page.locator(".error-summary")).to_be_focused()
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "login form with errors")

    page.get_by_label("Email").fill(organizer.email)
    page.get_by_label("Password").fill(organizer.password)
    page.get_by_label("Password").press("Enter")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.get_by_text(f"Signed in as {organizer.email}")).to_be_visible()
    assert_accessible(page, "dashboard")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
