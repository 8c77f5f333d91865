"""Demo guidelines: a draft, one released, and one releasing a few minutes after each seeding
(`make run` seeds, then serves: the release happens a few minutes after start).

The PDFs are tiny valid one-page documents written here byte by byte (no download).
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.core.clock import now
from portal.extensions import db
from portal.guidelines import storage
from portal.guidelines.models import Guideline, GuidelineEdition, GuidelineStatus

#: How long after `flask seed-demo` the demo release happens (make run shows it).
DEMO_RELEASE_DELAY = timedelta(minutes=3)

SCHEDULED_TITLE = "Situation Table Guidance: Information Sharing and Privacy"


def minimal_pdf(text: str) -> bytes:
    """A valid one-page PDF showing one line of (ASCII) text, with a correct xref table."""
    safe = text.encode("ascii", "replace").decode().replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 18 Tf 72 720 Td ({safe}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _add_editions(guideline: Guideline, slug: str) -> None:
    for language, title in (("en", guideline.title_en), ("fr", guideline.title_fr or guideline.title_en)):
        stored = storage.store_bytes(minimal_pdf(title), f"{slug}-{language}.pdf")
        db.session.add(GuidelineEdition(
            guideline=guideline, language=language, stored_name=stored.stored_name,
            original_name=stored.original_name, sha256=stored.sha256, size_bytes=stored.size_bytes,
        ))


def _exists(title: str) -> bool:
    return db.session.execute(select(Guideline.id).where(Guideline.title_en == title)).first() is not None


def _ensure_upcoming_release(moment) -> Guideline:
    """Make sure the demo has a guideline releasing DEMO_RELEASE_DELAY from now.

    `make run` seeds before it serves, so a newcomer always sees a release happen a few
    minutes after start: the first time the guideline is created; if an earlier run left it
    scheduled, its time moves to now + delay; if an earlier run released it, a revision
    (version 1.1, 1.2...) is scheduled, whose release also notifies everyone told about the
    earlier version.
    """
    versions = list(db.session.execute(
        select(Guideline).where(Guideline.title_en == SCHEDULED_TITLE).order_by(Guideline.id)
    ).scalars())
    release_at = moment + DEMO_RELEASE_DELAY
    pending = [g for g in versions if g.status == GuidelineStatus.SCHEDULED]
    if pending:
        for guideline in pending:
            guideline.release_at = release_at
        return pending[-1]
    scheduled = Guideline(
        title_en=SCHEDULED_TITLE,
        title_fr="Orientation pour les tables de concertation : échange d'information et vie privée",
        summary_en="What partners at a situation table may share, when, and how to respect privacy "
                   "law while acting on acutely elevated risk.",
        summary_fr="Ce que les partenaires d'une table de concertation peuvent échanger, quand, et "
                   "comment respecter la protection de la vie privée face à un risque très élevé.",
        version=f"1.{len(versions)}" if versions else "1.0",
        status=GuidelineStatus.SCHEDULED.value,
        release_at=release_at,
        revision_of_id=versions[-1].id if versions else None,
    )
    db.session.add(scheduled)
    slug = "situation-table-information-sharing"
    _add_editions(scheduled, slug if scheduled.version == "1.0" else f"{slug}-{scheduled.version}")
    return scheduled


def seed_demo() -> None:
    """Create the demo guidelines if missing (idempotent); flush only."""
    moment = now()
    released_title = "Collaborative Risk-Driven Intervention: A Starter Guide"
    if not _exists(released_title):
        released = Guideline(
            title_en=released_title,
            title_fr="Intervention collaborative axée sur les risques : guide de démarrage",
            summary_en="How communities set up a situation table, who sits at it, and how a meeting runs.",
            summary_fr="Comment une communauté met sur pied une table de concertation, qui y siège et "
                       "comment se déroule une réunion.",
            version="1.0",
            status=GuidelineStatus.RELEASED.value,
            release_at=moment - timedelta(days=30),
            released_at=moment - timedelta(days=30),
        )
        db.session.add(released)
        _add_editions(released, "starter-guide")
    _ensure_upcoming_release(moment)
    draft_title = "Measuring Community Safety and Well-Being Outcomes"
    if not _exists(draft_title):
        db.session.add(Guideline(
            title_en=draft_title,
            title_fr="Mesurer les résultats en matière de sécurité et de bien-être dans la collectivité",
            summary_en="Draft: indicators and data sources for local plans.",
            summary_fr="Ébauche : indicateurs et sources de données pour les plans locaux.",
            version="0.1",
            status=GuidelineStatus.DRAFT.value,
        ))
    db.session.flush()
