"""A guideline's PDF files follow the transaction that names them, savepoints or not."""
from __future__ import annotations

import io

from portal.extensions import db
from portal.guidelines import services, storage
from portal.guidelines.models import Guideline, GuidelineStatus
from tests.guidelines.conftest import create_guideline


def _draft(app) -> int:
    with app.app_context():
        guideline = create_guideline(status=GuidelineStatus.DRAFT)
        db.session.commit()
        return guideline.id


def test_a_savepoint_committed_inside_decides_nothing_the_outer_rollback_keeps_the_old_file(app, pdf_bytes):
    gid = _draft(app)
    with app.app_context():
        guideline = db.session.get(Guideline, gid)
        old = guideline.edition("en").stored_name
        new = services.add_edition(guideline, "en", io.BytesIO(pdf_bytes), "New.pdf").stored_name
        with db.session.begin_nested():
            pass  # any savepoint later in the same transaction
        db.session.rollback()
        assert storage.path_of(old).exists() and not storage.path_of(new).exists()
    with app.app_context():
        assert db.session.get(Guideline, gid).edition("en").stored_name == old


def test_a_savepoint_rolled_back_inside_keeps_the_file_the_outer_commit_names(app, pdf_bytes):
    gid = _draft(app)
    with app.app_context():
        guideline = db.session.get(Guideline, gid)
        old = guideline.edition("en").stored_name
        new = services.add_edition(guideline, "en", io.BytesIO(pdf_bytes), "New.pdf").stored_name
        try:
            with db.session.begin_nested():
                raise RuntimeError("a step that failed and was undone")
        except RuntimeError:
            pass
        db.session.commit()
        assert storage.path_of(new).exists() and not storage.path_of(old).exists()
    with app.app_context():
        assert db.session.get(Guideline, gid).edition("en").stored_name == new


def test_a_full_rollback_from_inside_a_savepoint_drops_the_new_file(app, pdf_bytes):
    gid = _draft(app)
    with app.app_context():
        guideline = db.session.get(Guideline, gid)
        old = guideline.edition("en").stored_name
        new = services.add_edition(guideline, "en", io.BytesIO(pdf_bytes), "New.pdf").stored_name
        db.session.begin_nested()
        db.session.rollback()  # rolls back the whole transaction, from inside the savepoint
        assert storage.path_of(old).exists() and not storage.path_of(new).exists()
