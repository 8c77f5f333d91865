"""Mail the lists area queues: confirmation requests, preference links, posts, test posts.

Only outbox rows, written in the caller's transaction; nothing here talks to SMTP.
"""
from __future__ import annotations

from flask import current_app

from portal.core.clock import now
from portal.core.formatting import render_markdown
from portal.core.tokens import hash_token
from portal.lists.models import ListPost, Subscription
from portal.mail.models import MessageCategory
from portal.mail.services import ListContext, queue_email
from portal.people.models import Person


def notify_confirmation_requested(subscription: Subscription, raw_token: str) -> int | None:
    """The double opt-in email: one confirmation link, transactional (no List-* headers).

    The key carries part of the new token's hash, so asking again sends a fresh link (the
    service rate-limits how often).
    """
    from portal.lists.services import CONFIRM_PAGE_WORDING_VERSION  # services imports this module

    mailing_list = subscription.mailing_list
    return queue_email(
        key=f"lists.confirmation:{subscription.id}:{hash_token(raw_token)[:16]}",
        to=subscription.person,
        template="lists/confirm_subscription",
        purpose="lists.confirmation",
        context={
            "list_name": mailing_list.name(subscription.person.language or "en"),
            "confirm_path": f"/lists/confirm/{raw_token}",
            # Added by the organizers from a file, not asked for: the message says so.
            "imported": subscription.requested_wording_version == CONFIRM_PAGE_WORDING_VERSION,
        },
        category=MessageCategory.TRANSACTIONAL,
    )


def notify_preferences_link(person: Person, raw_token: str) -> int | None:
    """The preference-centre link someone asked for (transactional)."""
    return queue_email(
        key=f"lists.preferences:{person.id}:{hash_token(raw_token)[:16]}",
        to=person,
        template="lists/preferences_link",
        purpose="lists.preferences",
        context={"preferences_path": f"/lists/preferences/{raw_token}"},
        category=MessageCategory.TRANSACTIONAL,
    )


def list_context_for(subscription: Subscription) -> ListContext:
    """List-* headers for one recipient: their own one-click link and mailto address."""
    from portal.lists.services import list_id_header, unsubscribe_address, unsubscribe_path, unsubscribe_token

    raw = unsubscribe_token(subscription)
    base = current_app.config["PORTAL_BASE_URL"].rstrip("/")
    mailing_list = subscription.mailing_list
    return ListContext(
        list_id=mailing_list.id,
        list_id_header=list_id_header(mailing_list),
        unsubscribe_url=f"{base}{unsubscribe_path(raw)}",
        # The one-click URL is what Gmail and Yahoo use; mail programs that cannot POST send
        # a message here, which the MTA hands to `flask receive-unsubscribe-mail` (README).
        unsubscribe_mailto=unsubscribe_address(raw),
        announce_only=mailing_list.announce_only,
    )


def post_context(post: ListPost, language: str) -> dict:
    return {
        "post": post,
        "list_name": post.mailing_list.name(language),
        "body_html": render_markdown(post.body),
        "archive_path": f"/lists/{post.mailing_list.slug}/archive/{post.id}" if post.mailing_list.is_public else "",
        # A working group's list: its people joined the group, not a list.
        "members_list": not post.mailing_list.is_public,
    }


def notify_post(post: ListPost, subscription: Subscription,
                contexts: dict[str, dict] | None = None) -> int | None:
    """One recipient's copy of a list post (category LIST, with List-* headers).

    `contexts` holds the rendered post per language, so a fan-out renders markdown once.
    """
    person = subscription.person
    language = person.language or "en"
    context = (contexts or {}).get(language) or post_context(post, language)
    return queue_email(
        key=f"lists.post:{post.id}:{person.id}",
        to=person,
        template="lists/post",
        purpose="lists.post",
        context=dict(context),
        category=MessageCategory.LIST,
        list_context=list_context_for(subscription),
        automatic=False,
    )


def notify_post_test(post: ListPost, person: Person, language: str = "en") -> int | None:
    """A test copy to the organizer, in `language`. Transactional and marked as a test, so it
    is never withheld for want of a subscription and never counted as a list post."""
    context = post_context(post, language)
    context["is_test"] = True
    return queue_email(
        key=f"lists.post-test:{post.id}:{person.id}:{now().isoformat()}",
        to=person,
        template="lists/post",
        purpose="lists.post_test",
        context=context,
        category=MessageCategory.TRANSACTIONAL,
        language=language,
    )
