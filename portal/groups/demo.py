"""Demo working groups modelled on the Ontario working group's own: idempotent, flush only."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.core.clock import now
from portal.extensions import db
from portal.groups import services
from portal.groups.models import Membership, MemberRole, MembershipStatus, WorkingGroup
from portal.people.models import Sector
from portal.people.services import get_or_create_person

COMMUNITIES = ["Toronto", "Sudbury", "Waterloo Region", "Peel Region", "North Bay", "Halton Region", "Chatham-Kent"]

#: A chair sign-in for trying the chair's view of "Situation Tables". Not created by
#: seed-demo (the demo has exactly one account); create it with
#: `flask --app portal create-chair chair@owg.example.ca situation-tables --name "Dana Whitfield"`.
DEMO_CHAIR_EMAIL = "chair@owg.example.ca"

GROUPS = [
    {
        "slug": "situation-tables",
        "name_en": "Situation Tables",
        "name_fr": "Tables de situation",
        "mandate_en": (
            "Share practice among communities running **situation tables**: multi-sector "
            "meetings that connect people facing acutely elevated risk to services within "
            "24 to 48 hours.\n\n- Compare discussion protocols\n- Collect outcome measures\n"
            "- Support new tables as they start"
        ),
        "mandate_fr": (
            "Partager les pratiques entre les communautés qui tiennent des **tables de situation** : "
            "des rencontres intersectorielles qui relient aux services, en 24 à 48 heures, les "
            "personnes exposées à un risque très élevé."
        ),
        "communities": COMMUNITIES,
        "sectors": ["police", "mental-health", "health-care", "child-protection", "education", "housing"],
        "terms_of_reference": (
            "## Purpose\nThe group shares practice among situation tables in Ontario.\n\n"
            "## Confidentiality\nMembers never share identifying information about people "
            "discussed at a table.\n\n## Meetings\nMonthly by video; minutes within two weeks."
        ),
        "terms_of_reference_fr": (
            "## Objet\nLe groupe met en commun les pratiques des tables de situation de l'Ontario.\n\n"
            "## Confidentialité\nLes membres ne communiquent jamais de renseignements permettant "
            "d'identifier les personnes dont une table discute.\n\n## Réunions\nChaque mois par "
            "vidéoconférence; procès-verbal dans les deux semaines."
        ),
        "members": [
            ("Dana Whitfield", "dana.whitfield@example.ca", "Greater Sudbury Police Service", "Sudbury", MemberRole.CHAIR, True, True),
            ("Priya Raman", "priya.raman@example.ca", "Region of Peel", "Peel Region", MemberRole.CO_CHAIR, True, True),
            ("Marc Tremblay", "marc.tremblay@example.ca", "North Bay Regional Health Centre", "North Bay", MemberRole.MEMBER, False, True),
            ("Grace Okafor", "grace.okafor@example.ca", "Waterloo Region District School Board", "Waterloo Region", MemberRole.MEMBER, True, False),
            ("Sam Lee", "sam.lee@example.ca", "Ministry of the Solicitor General", "Toronto", MemberRole.SECRETARIAT, True, True),
        ],
    },
    {
        "slug": "information-sharing-and-privacy",
        "name_en": "Information Sharing and Privacy",
        "name_fr": "Échange d'information et vie privée",
        "mandate_en": (
            "Develop guidance on sharing information lawfully across sectors when a person is "
            "at acutely elevated risk, under MFIPPA, PHIPA and the Child, Youth and Family "
            "Services Act."
        ),
        "mandate_fr": (
            "Élaborer des conseils sur l'échange légal d'information entre secteurs lorsqu'une "
            "personne est exposée à un risque très élevé."
        ),
        "communities": ["Toronto", "Halton Region", "Chatham-Kent", "Waterloo Region"],
        "sectors": ["health-care", "criminal-justice", "child-protection", "community-development"],
        "terms_of_reference": (
            "## Purpose\nThe group drafts guidance on information sharing and privacy.\n\n"
            "## Products\nDrafts are reviewed by the full working group before release."
        ),
        "terms_of_reference_fr": (
            "## Objet\nLe groupe rédige des conseils sur l'échange d'information et la vie privée.\n\n"
            "## Produits\nLe groupe de travail au complet examine les ébauches avant leur publication."
        ),
        "members": [
            ("Helen Marsh", "helen.marsh@example.ca", "Halton Regional Police Service", "Halton Region", MemberRole.CHAIR, True, True),
            ("Luc Bergeron", "luc.bergeron@example.ca", "Chatham-Kent Health Alliance", "Chatham-Kent", MemberRole.MEMBER, False, True),
            ("Amira Haddad", "amira.haddad@example.ca", "Toronto Public Health", "Toronto", MemberRole.OBSERVER, False, False),
        ],
    },
]


def seed_demo() -> None:
    """Create the demo groups, their members (active, ToR acknowledged, on the groups'
    lists), a shared document each, and one pending application to "Situation Tables"."""
    sectors = {s.slug: s.id for s in db.session.execute(select(Sector)).scalars()}
    today = now().date()
    for spec in GROUPS:
        group = db.session.execute(select(WorkingGroup).where(WorkingGroup.slug == spec["slug"])).scalar_one_or_none()
        if group is None:
            group = services.create_group(
                slug=spec["slug"], name_en=spec["name_en"], name_fr=spec["name_fr"],
                mandate_en=spec["mandate_en"], mandate_fr=spec["mandate_fr"], communities=spec["communities"],
                sector_ids=[sectors[s] for s in spec["sectors"] if s in sectors],
                terms_of_reference=spec["terms_of_reference"], terms_of_reference_fr=spec["terms_of_reference_fr"],
                tor_version="2026-1",
            )
            services.add_document(group, title="Terms of reference (PDF)", url="https://owg.example.ca/docs/tor.pdf",
                                  note="Approved by the full working group.", actor=None)
        for name, email, organization, community, role, show_email, show_org in spec["members"]:
            person = get_or_create_person(email, name=name, organization=organization, community=community)
            membership = db.session.execute(
                select(Membership).where(Membership.group_id == group.id, Membership.person_id == person.id)
            ).scalar_one_or_none()
            if membership is not None:
                continue
            membership = Membership(
                group=group, person=person, role=role.value, status=MembershipStatus.ACTIVE.value,
                term_start=today - timedelta(days=300), term_end=today + timedelta(days=65 if role == MemberRole.CHAIR else 400),
                show_email=show_email, show_organization=show_org, applied_at=now(), decided_at=now(),
                tor_acknowledged_version=group.tor_version, tor_acknowledged_at=now(),
            )
            db.session.add(membership)
        db.session.flush()
        services.sync_group_list(group)

    situation_tables = db.session.execute(
        select(WorkingGroup).where(WorkingGroup.slug == "situation-tables")
    ).scalar_one()
    applicant = get_or_create_person("jordan.smith@example.ca", name="Jordan Smith",
                                     organization="Canadian Mental Health Association", community="Sudbury")
    if db.session.execute(select(Membership).where(Membership.person_id == applicant.id)).first() is None:
        db.session.add(Membership(group=situation_tables, person=applicant, status=MembershipStatus.APPLIED.value,
                                  why="I coordinate the mental-health side of our new table.", applied_at=now()))
    db.session.flush()
