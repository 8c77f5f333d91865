"""Factories that build real rows through the services, committed, for tests."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from portal.extensions import db

_counter = itertools.count(1)


@dataclass
class AccountInfo:
    id: int
    email: str
    password: str
    admin: bool


class Factories:
    def __init__(self, app) -> None:
        self.app = app

    def person(self, email: str | None = None, **details):
        from portal.people.services import get_or_create_person

        with self.app.app_context():
            n = next(_counter)
            details.setdefault("name", f"Person {n}")
            person = get_or_create_person(email or f"person{n}@example.ca", **details)
            db.session.commit()
            db.session.refresh(person)
            db.session.expunge(person)
            return person

    def organizer(self, email: str | None = None, *, admin: bool = False,
                  password: str = "correct horse battery") -> AccountInfo:
        from portal.auth.services import create_organizer

        with self.app.app_context():
            n = next(_counter)
            account = create_organizer(email or f"organizer{n}@owg.example.ca", password,
                                       name=f"Organizer {n}", admin=admin)
            db.session.commit()
            return AccountInfo(account.id, account.email, password, admin)
