"""Demo data: the Toronto symposium, with questions and a few registrations."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from portal.core.clock import now
from portal.events.models import Event, EventQuestion, EventStatus, QuestionKind, Registration
from portal.events.services import RegistrationDetails, register_for_event
from portal.extensions import db

DEMO_SLUG = "community-safety-symposium"

DESCRIPTION = """\
A day for professionals from every sector working on risk-driven community safety and
well-being planning: police, health care, mental health and addictions, child protection,
education, corrections, housing and community development.

- Keynote on Ontario's Community Safety and Well-Being planning framework
- Panels from situation tables across the province
- Workshops on information sharing and privacy, and on measuring outcomes
"""

DESCRIPTION_FR = """\
Une journée pour les professionnels de tous les secteurs qui travaillent à la planification de
la sécurité et du bien-être communautaires axée sur les risques : police, soins de santé, santé
mentale et dépendances, protection de l'enfance, éducation, services correctionnels, logement
et développement communautaire.

- Conférence sur le cadre ontarien de planification de la sécurité et du bien-être communautaires
- Panels de tables de situation de toute la province
- Ateliers sur l'échange d'information et la protection de la vie privée, et sur la mesure des résultats
"""

ACCESSIBILITY_FR = """\
Entrée sans marches depuis le stationnement principal; toilettes accessibles à chaque étage;
une salle calme est ouverte toute la journée. Interprétation en langue des signes sur demande :
indiquez-le dans le formulaire. La gare GO de Mimico est à 10 minutes à pied; le tramway 501
de la TTC s'arrête à la porte.
"""

ACCESSIBILITY = """\
Step-free entrance from the main parking lot; accessible washrooms on every floor; a quiet
room is available all day. Sign language interpretation on request: tell us on the form.
Mimico GO station is a 10-minute walk; TTC 501 streetcar stops at the door.
"""

PEOPLE = [
    ("Amira Haddad", "amira.haddad@example.ca", "Peel Regional Police", "police", "Mississauga"),
    ("Jean Tremblay", "jean.tremblay@example.ca", "Sudbury Public Health", "health-care", "Sudbury"),
    ("Grace Okafor", "grace.okafor@example.ca", "CMHA Thunder Bay", "mental-health", "Thunder Bay"),
    ("Daniel Wong", "daniel.wong@example.ca", "Toronto District School Board", "education", "Toronto"),
    ("Sarah Beaulieu", "sarah.beaulieu@example.ca", "Children's Aid Society of Ottawa", "child-protection", "Ottawa"),
    ("Marcus Reid", "marcus.reid@example.ca", "Housing Services Hamilton", "housing", "Hamilton"),
]


def seed_demo() -> None:
    """Create the demo symposium if it is missing, with questions and registrations."""
    if db.session.execute(select(Event.id).where(Event.slug == DEMO_SLUG)).first():
        return
    zone = ZoneInfo("America/Toronto")
    day = (now().astimezone(zone) + timedelta(days=45)).date()
    event = Event(
        slug=DEMO_SLUG,
        title="Collaborating for Community Safety and Well-being",
        summary="Ontario's cross-sector symposium on risk-driven community safety and well-being.",
        description=DESCRIPTION,
        title_fr="Collaborer pour la sécurité et le bien-être communautaires",
        summary_fr="Le symposium intersectoriel de l'Ontario sur la sécurité et le bien-être "
                   "communautaires axés sur les risques.",
        description_fr=DESCRIPTION_FR,
        venue_accessibility_fr=ACCESSIBILITY_FR,
        starts_at=datetime(day.year, day.month, day.day, 8, 30, tzinfo=zone),
        ends_at=datetime(day.year, day.month, day.day, 16, 30, tzinfo=zone),
        timezone="America/Toronto",
        venue_name="Toronto Police College",
        venue_address="70 Birmingham Street, Toronto, ON M8V 3W6",
        venue_accessibility=ACCESSIBILITY,
        capacity=250,
        sector_cap_percent=30,
        status=EventStatus.PUBLISHED.value,
        reminder_days=3,
    )
    db.session.add(event)
    db.session.flush()
    db.session.add_all([
        EventQuestion(event_id=event.id, position=1, label="Which workshop would you like to attend?",
                      label_fr="À quel atelier aimeriez-vous participer?",
                      kind=QuestionKind.SINGLE_CHOICE.value, required=True,
                      choices_text="Information sharing and privacy\nMeasuring outcomes\nStarting a situation table",
                      choices_fr_text="Échange d'information et vie privée\nMesurer les résultats\n"
                                      "Lancer une table de situation"),
        EventQuestion(event_id=event.id, position=2, label="Is your community running a situation table?",
                      label_fr="Votre collectivité a-t-elle une table de situation?",
                      kind=QuestionKind.CHECKBOX.value),
        EventQuestion(event_id=event.id, position=3, label="What would you like the panel to discuss?",
                      label_fr="De quoi aimeriez-vous que le panel discute?",
                      kind=QuestionKind.LONG_TEXT.value, hint="Optional: we pass questions to the moderator.",
                      hint_fr="Facultatif : nous transmettons les questions à l'animatrice."),
    ])
    db.session.flush()
    db.session.refresh(event)
    first_question = event.questions[0]
    for index, (name, email, organization, sector, community) in enumerate(PEOPLE):
        register_for_event(event.id, RegistrationDetails(
            email=email, name=name, organization=organization, sector_slug=sector, community=community,
            answers={str(first_question.id): first_question.choices[index % 3]},
            dietary_needs="Vegetarian" if index % 3 == 0 else "",
        ))
    db.session.flush()
    assert db.session.execute(select(Registration.id).where(Registration.event_id == event.id)).first()
