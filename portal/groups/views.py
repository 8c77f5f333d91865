"""Working groups: public pages, members' pages (by personal link) and /admin/groups.

Members' access: following a members' link stores {group id: person id} under
`MEMBER_SESSION_KEY` in the signed session and redirects to a token-free URL; each
members-only page re-checks the membership is still active (see services' docstring).
"""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from portal.core.errors import DomainError
from portal.core.formatting import org_name
from portal.core.permissions import organizer_required, refuse_another_ones
from portal.core.web import (
    audit_page_view,
    current_language,
    request_origin,
    speak_the_language_of,
    submit_form,
    user_agent,
)
from portal.extensions import db, limiter
from portal.groups import bp, services
from portal.groups.forms import (
    AcceptInvitationForm,
    AcknowledgeForm,
    AddMemberForm,
    ApplyForm,
    ChairAccountForm,
    ConfirmForm,
    DecisionForm,
    DirectoryForm,
    DocumentForm,
    GroupForm,
    InviteForm,
    MemberLinkForm,
    MembershipForm,
    PostForm,
)
from portal.groups.models import ROLE_WORDS, GroupDocument, Membership, MembershipStatus, WorkingGroup
from portal.groups.permissions import any_group_manager_required, group_manager_required
from portal.people.services import list_sectors

MEMBER_SESSION_KEY = "group_members"


@bp.context_processor
def _groups_helpers() -> dict:
    return {"role_label": lambda role: ROLE_WORDS.get(role, role)}



def _group_or_404(slug: str) -> WorkingGroup:
    return db.first_or_404(select(WorkingGroup).where(WorkingGroup.slug == slug))


def _consent_wording(group: WorkingGroup) -> str:
    return services.member_mail_consent_wording(
        group, org_name(current_language()), current_app.config["PORTAL_ORG_CONTACT"], current_language()
    )


def _error_on(form, error: DomainError, field: str | None = None) -> None:
    target = getattr(form, field) if field else None
    if target is not None:
        target.errors = list(target.errors) + [str(error.message)]
    else:
        flash(str(error.message), "error")


# --- public pages --------------------------------------------------------------------------



@bp.route("/groups")
def index():
    return render_template("groups/index.html", groups=services.list_groups(), language=current_language())


@bp.route("/groups/<slug>", endpoint="group")
def show(slug: str):
    group = _group_or_404(slug)
    return render_template("groups/group.html", group=group, language=current_language())


@bp.route("/groups/<slug>/apply", methods=["GET", "POST"])
@limiter.limit("20/minute;100/hour", methods=["POST"])
def apply(slug: str):
    group = _group_or_404(slug)
    form = ApplyForm()
    sectors = list_sectors()
    form.sector.choices = [SelectChoice("", _("Choose your sector"))] + [
        SelectChoice(str(s.id), s.name(current_language())) for s in sectors
    ]
    wording = _consent_wording(group)
    form.consent.label.text = wording
    outcome = submit_form(
        form,
        lambda: services.apply_to_group(
            group,
            email=form.email.data,
            name=form.name.data.strip(),
            organization=(form.organization.data or "").strip(),
            sector_id=int(form.sector.data) if form.sector.data else None,
            community=(form.community.data or "").strip(),
            why=form.why.data.strip(),
            show_email=form.show_email.data,
            show_organization=form.show_organization.data,
            consent=form.consent.data,
            consent_wording=wording,
            ip=request_origin(),
            user_agent=user_agent(),
            language=current_language(),
        ),
        error_field="email",
        success=_("Thank you. Check your email: confirm your application from the link we sent, and it goes to the group's chairs."),
        redirect_to=url_for("groups.group", slug=group.slug),
    )
    if isinstance(outcome, Response):
        return outcome
    return render_template("groups/apply.html", group=group, form=form, language=current_language()), outcome


# --- members' pages ------------------------------------------------------------------------


def _session_membership(group: WorkingGroup) -> Membership | None:
    remembered = session.get(MEMBER_SESSION_KEY)
    person_id = remembered.get(str(group.id)) if isinstance(remembered, dict) else None
    return services.current_membership(group, person_id)


@bp.route("/groups/<slug>/members/access/<token>")
def member_access(slug: str, token: str):
    group = _group_or_404(slug)
    membership = services.membership_from_link(group, token)
    remembered = session.get(MEMBER_SESSION_KEY)
    remembered = dict(remembered) if isinstance(remembered, dict) else {}
    remembered[str(group.id)] = membership.person_id
    session[MEMBER_SESSION_KEY] = remembered
    # Redirect so the token leaves the address bar, the history and any Referer header.
    return redirect(url_for("groups.members", slug=group.slug))


def _member_or_redirect(group: WorkingGroup, *, need_terms: bool = True):
    membership = _session_membership(group)
    if membership is None:
        flash(_("The members' pages open with your personal link. Enter your email address to receive it."), "info")
        return None, redirect(url_for("groups.member_link", slug=group.slug))
    # The members' pages are reached from emailed links: they speak the member's language, as
    # those emails did (unless this browser chose one with the language switch).
    speak_the_language_of(membership.person)
    if need_terms and not membership.has_acknowledged(group):
        return None, redirect(url_for("groups.terms", slug=group.slug))
    return membership, None


@bp.route("/groups/<slug>/members")
def members(slug: str):
    group = _group_or_404(slug)
    membership, response = _member_or_redirect(group)
    if response is not None:
        return response
    directory_form = DirectoryForm(
        formdata=None, show_email=membership.show_email, show_organization=membership.show_organization
    )
    return render_template(
        "groups/members.html",
        group=group,
        membership=membership,
        directory=services.directory(group),
        posts=services.group_posts(group),
        documents=services.documents(group),
        directory_form=directory_form,
        leave_form=ConfirmForm(prefix="leave"),
        language=current_language(),
    )


@bp.route("/groups/<slug>/members/terms", methods=["GET", "POST"])
def terms(slug: str):
    group = _group_or_404(slug)
    membership, response = _member_or_redirect(group, need_terms=False)
    if response is not None:
        return response
    form = AcknowledgeForm()
    outcome = submit_form(
        form, lambda: services.acknowledge_terms(membership, origin=request_origin()),
        error_field="acknowledge", success=_("Thank you. You acknowledged the terms of reference."),
        redirect_to=url_for("groups.members", slug=group.slug),
    )
    if isinstance(outcome, Response):
        return outcome
    return render_template("groups/terms.html", group=group, membership=membership, form=form,
                           language=current_language()), outcome


@bp.route("/groups/<slug>/members/directory", methods=["POST"])
def directory_entry(slug: str):
    group = _group_or_404(slug)
    membership, response = _member_or_redirect(group)
    if response is not None:
        return response
    form = DirectoryForm()
    if not form.validate_on_submit():
        flash(_("Your choices could not be saved. Please try again."), "error")
        return redirect(url_for("groups.members", slug=group.slug)), 303
    services.update_directory_entry(
        membership, show_email=form.show_email.data, show_organization=form.show_organization.data
    )
    db.session.commit()
    flash(_("Your directory entry was updated."), "success")
    return redirect(url_for("groups.members", slug=group.slug))


@bp.route("/groups/<slug>/members/leave", methods=["POST"])
def leave(slug: str):
    group = _group_or_404(slug)
    membership, response = _member_or_redirect(group, need_terms=False)
    if response is not None:
        return response
    form = ConfirmForm(prefix="leave")
    if not form.validate_on_submit():
        return redirect(url_for("groups.members", slug=group.slug)), 303
    services.remove_member(membership, actor=None, origin=request_origin(), by_member=True)
    db.session.commit()
    remembered = dict(session.get(MEMBER_SESSION_KEY) or {})
    remembered.pop(str(group.id), None)
    session[MEMBER_SESSION_KEY] = remembered
    flash(_("You left the group. You will receive no more of its messages."), "success")
    return redirect(url_for("groups.group", slug=group.slug))


@bp.route("/groups/<slug>/members/link", methods=["GET", "POST"])
@limiter.limit("5/minute;30/hour", methods=["POST"])
def member_link(slug: str):
    group = _group_or_404(slug)
    form = MemberLinkForm()
    # The same answer whether or not the address belongs to a member.
    outcome = submit_form(
        form, lambda: services.request_member_link(group, form.email.data), error_field="email",
        success=_("If this address belongs to a member of the group, a link to the members' pages is on its way."),
        redirect_to=url_for("groups.member_link", slug=group.slug),
    )
    if isinstance(outcome, Response):
        return outcome
    return render_template("groups/member_link.html", group=group, form=form, language=current_language()), outcome


@bp.route("/groups/invitations/<token>", methods=["GET", "POST"])
def invitation(token: str):
    membership = services.invitation_for(token)
    speak_the_language_of(membership.person)  # as the invitation did
    group = membership.group
    form = AcceptInvitationForm()
    wording = _consent_wording(group)
    form.consent.label.text = wording
    status = 200
    if form.validate_on_submit():
        membership, _link = services.accept_invitation(
            token, consent=form.consent.data, consent_wording=wording,
            show_email=form.show_email.data, show_organization=form.show_organization.data,
            ip=request_origin(), user_agent=user_agent(), language=current_language(),
        )
        db.session.commit()
        remembered = dict(session.get(MEMBER_SESSION_KEY) or {})
        remembered[str(group.id)] = membership.person_id
        session[MEMBER_SESSION_KEY] = remembered
        flash(_("Welcome to the group. We also emailed you your personal link to these pages."), "success")
        return redirect(url_for("groups.members", slug=group.slug))
    if request.method == "POST":
        status = 400
    return render_template("groups/invitation.html", group=group, membership=membership, form=form,
                           language=current_language()), status


@bp.route("/groups/applications/<token>", methods=["GET", "POST"])
def confirm_application(token: str):
    """The applicant confirms from the emailed link: their own directory choices and consent
    to the group's mail, then the application goes to the chairs."""
    membership = services.application_for(token)
    speak_the_language_of(membership.person)
    group = membership.group
    form = AcceptInvitationForm(data=None if request.method == "POST" else {
        "show_email": membership.show_email, "show_organization": membership.show_organization})
    wording = _consent_wording(group)
    form.consent.label.text = wording
    status = 200
    if form.validate_on_submit():
        services.confirm_application(
            token, consent=form.consent.data, consent_wording=wording,
            show_email=form.show_email.data, show_organization=form.show_organization.data,
            ip=request_origin(), user_agent=user_agent(), language=current_language(),
        )
        db.session.commit()
        flash(_("Thank you. Your application was sent to the group's chairs; we will email you their decision."),
              "success")
        return redirect(url_for("groups.group", slug=group.slug))
    if request.method == "POST":
        status = 400
    return render_template("groups/confirm_application.html", group=group, membership=membership, form=form,
                           language=current_language()), status


# --- /admin/groups ----------------------------------------------------------------------------


@bp.route("/admin/groups")
@any_group_manager_required
def admin_index():
    groups = services.list_groups()
    if not current_user.is_organizer:
        mine = services.chaired_group_ids(current_user)
        groups = [g for g in groups if g.id in mine]
    return render_template("groups/admin/index.html", groups=groups)


def _fill_group_form(form: GroupForm) -> None:
    form.sectors.choices = [SelectChoice(s.id, s.name(current_language())) for s in list_sectors()]


def _communities(text: str | None) -> list[str]:
    return [line for line in (text or "").splitlines() if line.strip()]


def _group_fields(form: GroupForm) -> dict:
    """What the group form says, as the create and update services take it."""
    return dict(
        name_en=form.name_en.data.strip(), name_fr=(form.name_fr.data or "").strip(),
        mandate_en=form.mandate_en.data or "", mandate_fr=form.mandate_fr.data or "",
        communities=_communities(form.communities.data), sector_ids=form.sectors.data or [],
        terms_of_reference=form.terms_of_reference.data or "",
        terms_of_reference_fr=form.terms_of_reference_fr.data or "", tor_version=form.tor_version.data.strip(),
        retention_months=form.retention_months.data, actor=current_user, origin=request_origin(),
    )


@bp.route("/admin/groups/new", methods=["GET", "POST"])
@organizer_required
def admin_new():
    form = GroupForm()
    _fill_group_form(form)

    outcome = submit_form(
        form, lambda: services.create_group(slug=form.slug.data, **_group_fields(form)), error_field="slug", success=_("The working group was created."),
        redirect_to=lambda group: url_for("groups.admin_group", slug=group.slug),
    )
    if isinstance(outcome, Response):
        return outcome
    if request.method == "GET":
        form.tor_version.data = form.tor_version.data or "1"
    return render_template("groups/admin/group_form.html", form=form, group=None), outcome


@bp.route("/admin/groups/<slug>/edit", methods=["GET", "POST"])
@organizer_required
def admin_edit(slug: str):
    group = _group_or_404(slug)
    form = GroupForm(obj=group if request.method == "GET" else None)
    _fill_group_form(form)
    if request.method == "GET":
        form.communities.data = "\n".join(group.communities or [])
        form.sectors.data = [s.id for s in group.sectors]
    form.slug.data = group.slug  # the web address does not change (links in mail use it)

    outcome = submit_form(
        form, lambda: services.update_group(group, **_group_fields(form)), error_field="name_en", success=_("The working group was updated."),
        redirect_to=url_for("groups.admin_group", slug=group.slug),
    )
    if isinstance(outcome, Response):
        return outcome
    return render_template("groups/admin/group_form.html", form=form, group=group), outcome


def _admin_group_page(group: WorkingGroup, document_form: DocumentForm | None = None, status: int = 200):
    return render_template(
        "groups/admin/group.html",
        group=group,
        applications=services.memberships_in(group, MembershipStatus.APPLIED),
        invited=services.memberships_in(group, MembershipStatus.INVITED),
        members=services.active_members(group),
        documents=services.documents(group),
        chairs=services.chair_accounts(group),
        document_form=document_form or DocumentForm(prefix="document", formdata=None),
        language=current_language(),
    ), status


@bp.route("/admin/groups/<slug>")
@group_manager_required
def admin_group(group: WorkingGroup):
    audit_page_view("groups.members.viewed", f"group:{group.id}")
    return _admin_group_page(group)


def _membership_of(group: WorkingGroup, membership_id: int) -> Membership:
    membership = db.get_or_404(Membership, membership_id)
    if membership.group_id != group.id:
        refuse_another_ones("membership", membership.id)
    return membership


@bp.route("/admin/groups/<slug>/memberships/<int:membership_id>/decision", methods=["POST"])
@group_manager_required
def admin_decide(group: WorkingGroup, membership_id: int):
    membership = _membership_of(group, membership_id)
    form = DecisionForm()
    if not form.validate_on_submit():
        flash(_("Choose approve or decline."), "error")
        return _admin_group_page(group, status=400)
    approve = form.decision.data == "approve"
    try:
        services.decide_application(membership, approve=approve, actor=current_user, origin=request_origin())
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "error")
        return _admin_group_page(group, status=error.status)
    db.session.commit()
    name = membership.person.name or membership.person.email
    flash(_("%(name)s was approved and emailed their link.", name=name) if approve
          else _("%(name)s's application was declined and they were emailed.", name=name), "success")
    return redirect(url_for("groups.admin_group", slug=group.slug))


@bp.route("/admin/groups/<slug>/memberships/<int:membership_id>", methods=["GET", "POST"])
@group_manager_required
def admin_membership(group: WorkingGroup, membership_id: int):
    membership = _membership_of(group, membership_id)
    if request.method == "GET":
        audit_page_view("groups.membership.viewed", f"membership:{membership.id}", group=group.slug)
    form = MembershipForm(obj=membership if request.method == "GET" else None)
    outcome = submit_form(
        form,
        lambda: services.set_role(membership, role=form.role.data, term_start=form.term_start.data,
                                  term_end=form.term_end.data, actor=current_user, origin=request_origin()),
        error_field="term_end", success=_("The role and term were saved."),
        redirect_to=url_for("groups.admin_group", slug=group.slug),
    )
    if isinstance(outcome, Response):
        return outcome
    return render_template("groups/admin/membership.html", group=group, membership=membership, form=form,
                           remove_form=ConfirmForm(prefix="remove", formdata=None)), outcome


@bp.route("/admin/groups/<slug>/memberships/<int:membership_id>/remove", methods=["POST"])
@group_manager_required
def admin_remove(group: WorkingGroup, membership_id: int):
    membership = _membership_of(group, membership_id)
    form = ConfirmForm(prefix="remove")
    if not form.validate_on_submit():
        return redirect(url_for("groups.admin_membership", slug=group.slug, membership_id=membership.id)), 303
    try:
        services.remove_member(membership, actor=current_user, origin=request_origin())
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "error")
        return _admin_group_page(group, status=error.status)
    db.session.commit()
    flash(_("The member was removed from the group and its list."), "success")
    return redirect(url_for("groups.admin_group", slug=group.slug))


@bp.route("/admin/groups/<slug>/members/new", methods=["GET", "POST"])
@organizer_required
def admin_add_member(slug: str):
    group = _group_or_404(slug)
    form = AddMemberForm()
    outcome = submit_form(
        form,
        lambda: services.add_member(
            group, email=form.email.data, name=form.name.data.strip(),
            organization=(form.organization.data or "").strip(), role=form.role.data,
            term_start=form.term_start.data, term_end=form.term_end.data, language=form.language.data,
            actor=current_user, origin=request_origin()),
        error_field="email", success=_("The member was added and emailed their link."),
        redirect_to=url_for("groups.admin_group", slug=group.slug),
    )
    if isinstance(outcome, Response):
        return outcome
    return render_template("groups/admin/add_member.html", group=group, form=form), outcome


@bp.route("/admin/groups/<slug>/invitations/new", methods=["GET", "POST"])
@organizer_required
def admin_invite(slug: str):
    group = _group_or_404(slug)
    form = InviteForm()
    outcome = submit_form(
        form,
        lambda: services.invite_member(group, email=form.email.data, name=(form.name.data or "").strip(),
                                       role=form.role.data, language=form.language.data, actor=current_user,
                                       origin=request_origin()),
        error_field="email", success=_("The invitation was sent."),
        redirect_to=url_for("groups.admin_group", slug=group.slug),
    )
    if isinstance(outcome, Response):
        return outcome
    return render_template("groups/admin/invite.html", group=group, form=form), outcome


@bp.route("/admin/groups/<slug>/documents", methods=["POST"])
@group_manager_required
def admin_add_document(group: WorkingGroup):
    form = DocumentForm(prefix="document")
    outcome = submit_form(
        form,
        lambda: services.add_document(group, title=form.title.data.strip(), url=(form.url.data or "").strip(),
                                      note=form.note.data or "", actor=current_user, origin=request_origin()),
        error_field="url", success=_("The document is now shared with the members."),
        redirect_to=url_for("groups.admin_group", slug=group.slug),
    )
    if isinstance(outcome, Response):
        return outcome
    return _admin_group_page(group, document_form=form, status=outcome)


@bp.route("/admin/groups/<slug>/documents/<int:document_id>/delete", methods=["POST"])
@group_manager_required
def admin_delete_document(group: WorkingGroup, document_id: int):
    document = db.get_or_404(GroupDocument, document_id)
    if document.group_id != group.id:
        refuse_another_ones("document", document.id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        return redirect(url_for("groups.admin_group", slug=group.slug)), 303
    services.delete_document(document, actor=current_user, origin=request_origin())
    db.session.commit()
    flash(_("The document was removed."), "success")
    return redirect(url_for("groups.admin_group", slug=group.slug))


@bp.route("/admin/groups/<slug>/chairs", methods=["GET", "POST"])
@organizer_required
def admin_chairs(slug: str):
    group = _group_or_404(slug)
    form = ChairAccountForm()
    outcome = submit_form(
        form,
        lambda: services.create_chair_account(form.email.data, form.password.data, group,
                                              name=form.name.data.strip(), actor=current_user,
                                              origin=request_origin()),
        error_field="email", success=_("The chair can now sign in and manage this group."),
        redirect_to=url_for("groups.admin_group", slug=group.slug),
    )
    if isinstance(outcome, Response):
        return outcome
    return render_template("groups/admin/chairs.html", group=group, form=form,
                           chairs=services.chair_accounts(group)), outcome


@bp.route("/admin/groups/<slug>/chairs/<int:account_id>/remove", methods=["POST"])
@organizer_required
def admin_remove_chair(slug: str, account_id: int):
    group = _group_or_404(slug)
    form = ConfirmForm()
    if not form.validate_on_submit():
        return redirect(url_for("groups.admin_chairs", slug=group.slug)), 303
    services.revoke_chair_account(group, account_id, actor=current_user, origin=request_origin())
    db.session.commit()
    flash(_("That account no longer manages this group."), "success")
    return redirect(url_for("groups.admin_chairs", slug=group.slug))


@bp.route("/admin/groups/<slug>/post", methods=["GET", "POST"])
@group_manager_required
def admin_post(group: WorkingGroup):
    """Chairs and organizers write to the group's list: preview, test to themselves, send."""
    form = PostForm()
    status = 200
    preview = None
    if not services.can_post(group):
        flash(_("Writing to the list is not available yet."), "error")
        return redirect(url_for("groups.admin_group", slug=group.slug))
    if form.validate_on_submit():
        action = form.action.data
        if action == "preview":
            preview = form.body.data
        else:
            try:
                post = services.save_group_post(
                    group, subject=form.subject.data, body=form.body.data, language=form.language.data,
                    author=current_user, draft_id=int(form.draft.data) if form.draft.data else None,
                )
                if action == "test":
                    services.send_group_post_test(post, current_user, current_language())
                else:
                    count = services.send_group_post(group, post, actor=current_user, origin=request_origin())
            except DomainError as error:
                db.session.rollback()
                _error_on(form, error, "subject")
                status = error.status
            else:
                db.session.commit()
                if action == "test":
                    form.draft.data = str(post.id)
                    flash(_("A test was sent to %(email)s.", email=current_user.email), "success")
                    preview = form.body.data
                else:
                    flash(ngettext("The message was sent to %(num)d member.", "The message was sent to %(num)d members.",
                                   count), "success")
                    return redirect(url_for("groups.admin_group", slug=group.slug))
    elif request.method == "POST":
        status = 400
    return render_template("groups/admin/post.html", group=group, form=form, preview=preview,
                           recipients=services.post_recipient_count(group)), status
